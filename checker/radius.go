package checker

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
)

// RADIUS is the negotiate check of service=radius: one Access-Request over UDP to the check port with
// User-Name = login, User-Password = passwd (hidden with secret, RFC 2865) and NAS-IP-Address = the local
// address of the socket. Healthy only on an Access-Accept whose Response Authenticator proves it knows
// secret; Access-Reject, a forged answer or no answer is not. The daemon bounds it by checktimeout, as
// ldirectord does.
var RADIUS Checker = Func(radiusCheck)

const (
	radiusAccessRequest = 1
	radiusAccessAccept  = 2
	radiusAccessReject  = 3
)

func radiusCheck(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	label := "radius " + ap.String()
	c, err := dial(ctx, "udp", ap)
	if err != nil {
		return failf(err, "%s", label)
	}
	defer c.Close()
	var auth [16]byte
	rand.Read(auth[:])
	var idb [1]byte
	rand.Read(idb[:])
	pkt := []byte{radiusAccessRequest, idb[0], 0, 0}
	pkt = append(pkt, auth[:]...)
	pkt = radiusAttr(pkt, 1, []byte(t.Login))
	pkt = radiusAttr(pkt, 2, radiusHidePassword([]byte(t.Passwd), []byte(t.Secret), auth[:]))
	nas := netip.MustParseAddr("127.0.0.1")
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		if a, ok := netip.AddrFromSlice(ua.IP); ok && a.Unmap().Is4() {
			nas = a.Unmap()
		}
	}
	if nas.Is4() {
		b := nas.As4()
		pkt = radiusAttr(pkt, 4, b[:])
	}
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	if _, err := c.Write(pkt); err != nil {
		return failf(err, "%s: sending Access-Request", label)
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return failf(err, "%s: Access-Request", label)
		}
		r := buf[:n]
		if n < 20 || r[1] != idb[0] || int(binary.BigEndian.Uint16(r[2:])) > n {
			continue // not an answer to this request
		}
		r = r[:binary.BigEndian.Uint16(r[2:])]
		h := md5.New()
		h.Write(r[:4])
		h.Write(auth[:])
		h.Write(r[20:])
		h.Write([]byte(t.Secret))
		if !bytes.Equal(h.Sum(nil), r[4:20]) {
			return errorf("%s: answer has a bad authenticator (wrong secret?)", label)
		}
		switch r[0] {
		case radiusAccessAccept:
			return nil
		case radiusAccessReject:
			return errorf("%s: Access-Reject", label)
		default:
			return errorf("%s: answer code %d, not Access-Accept", label, r[0])
		}
	}
}

func radiusAttr(pkt []byte, typ byte, v []byte) []byte {
	if len(v) > 253 {
		v = v[:253]
	}
	return append(append(pkt, typ, byte(2+len(v))), v...)
}

// radiusHidePassword is RFC 2865 §5.2: pad to 16 bytes, XOR each block with MD5(secret + previous block).
func radiusHidePassword(pw, secret, auth []byte) []byte {
	n := (len(pw) + 15) / 16 * 16
	if n == 0 {
		n = 16
	}
	if n > 128 {
		n = 128
	}
	out := make([]byte, n)
	copy(out, pw)
	prev := auth
	for i := 0; i < n; i += 16 {
		sum := md5.Sum(append(append([]byte(nil), secret...), prev...))
		for j := range 16 {
			out[i+j] ^= sum[j]
		}
		prev = out[i : i+16]
	}
	return out
}
