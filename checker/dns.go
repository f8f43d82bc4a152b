package checker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is the negotiate check of service=dns: one query to the real server at the check port, over TCP
// when the virtual is TCP and UDP otherwise, for the name in request (without its leading '/'), type A
// with recursion desired; a request that is an IP address is a PTR query for it, as in ldirectord. Healthy
// when an answer record (A address or PTR name) matches receive; an empty receive accepts any A or PTR
// answer (ldirectord is then always down). The name is queried as written, made absolute: no
// /etc/resolv.conf search domains.
var DNS Checker = Func(dnsCheck)

func dnsCheck(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	re, err := receiveOrNil(t.Receive)
	if err != nil {
		return err
	}
	network := "tcp"
	if t.UDP {
		network = "udp"
	}
	qname := strings.TrimPrefix(t.Request, "/")
	label := "dns " + network + " " + ap.String()
	if qname == "" {
		return errorf("%s: request names nothing to query", label)
	}
	qtype := dnsmessage.TypeA
	if a, err := netip.ParseAddr(qname); err == nil {
		qname, qtype = reverseName(a), dnsmessage.TypePTR
	}
	if !strings.HasSuffix(qname, ".") {
		qname += "."
	}
	name, err := dnsmessage.NewName(qname)
	if err != nil {
		return errorf("%s: bad name %q", label, qname)
	}
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: qtype, Class: dnsmessage.ClassINET}},
	}
	msg, err := q.Pack()
	if err != nil {
		return errorf("%s: %v", label, err)
	}
	label += " " + qtype.String()[4:] + " " + strings.TrimSuffix(qname, ".")
	c, err := dial(ctx, network, ap)
	if err != nil {
		return failf(err, "%s", label)
	}
	defer c.Close()
	var answer []byte
	if t.UDP {
		if _, err := c.Write(msg); err != nil {
			return failf(err, "%s", label)
		}
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return failf(err, "%s", label)
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == id {
				answer = buf[:n]
				break
			}
		}
	} else {
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
		if _, err := c.Write(append(framed, msg...)); err != nil {
			return failf(err, "%s", label)
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return failf(err, "%s", label)
		}
		answer = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, answer); err != nil {
			return failf(err, "%s", label)
		}
	}
	var p dnsmessage.Parser
	h, err := p.Start(answer)
	if err != nil || h.ID != id || !h.Response {
		return errorf("%s: not a DNS answer to our query", label)
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return errorf("%s: %s", label, strings.TrimPrefix(h.RCode.String(), "RCode"))
	}
	if err := p.SkipAllQuestions(); err != nil {
		return errorf("%s: malformed answer", label)
	}
	var seen []string
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return errorf("%s: malformed answer", label)
		}
		var v string
		switch rh.Type {
		case dnsmessage.TypeA:
			r, err := p.AResource()
			if err != nil {
				return errorf("%s: malformed answer", label)
			}
			v = netip.AddrFrom4(r.A).String()
		case dnsmessage.TypePTR:
			r, err := p.PTRResource()
			if err != nil {
				return errorf("%s: malformed answer", label)
			}
			v = strings.TrimSuffix(r.PTR.String(), ".")
		default:
			p.SkipAnswer()
			continue
		}
		if re == nil || re.MatchString(v) {
			return nil
		}
		seen = append(seen, v)
	}
	if len(seen) == 0 {
		return errorf("%s: no A or PTR answer", label)
	}
	return errorf("%s: answer %s does not match %s", label, strings.Join(seen, ", "), strconv.Quote(t.Receive))
}

// reverseName is the in-addr.arpa or ip6.arpa name of a.
func reverseName(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return strconv.Itoa(int(b[3])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[1])) + "." +
			strconv.Itoa(int(b[0])) + ".in-addr.arpa."
	}
	b := a.As16()
	const hex = "0123456789abcdef"
	var s strings.Builder
	for i := 15; i >= 0; i-- {
		s.WriteByte(hex[b[i]&0xf])
		s.WriteByte('.')
		s.WriteByte(hex[b[i]>>4])
		s.WriteByte('.')
	}
	s.WriteString("ip6.arpa.")
	return s.String()
}
