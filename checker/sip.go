package checker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
)

// SIP is the negotiate check of service=sip: an OPTIONS request for sip:<login> over UDP or TCP (the
// virtual's protocol), with ldirectord's headers; healthy when the status line starts with
// "SIP/2.0 200 OK". Unlike ldirectord the Via header names the transport actually used, and nothing is
// printed.
var SIP Checker = Func(sipCheck)

func sipCheck(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	network, transport := "tcp", "TCP"
	if t.UDP {
		network, transport = "udp", "UDP"
	}
	label := "sip " + network + " " + ap.String()
	c, err := dial(ctx, network, ap)
	if err != nil {
		return failf(err, "%s", label)
	}
	defer c.Close()
	var id [8]byte
	rand.Read(id[:])
	local := c.LocalAddr().String()
	req := "OPTIONS sip:" + t.Login + " SIP/2.0\r\n" +
		"Via: SIP/2.0/" + transport + " " + local + ";branch=z9hG4bKhjhs8ass877\r\n" +
		"Max-Forwards: 70\r\n" +
		"To: <sip:" + t.Login + ">\r\n" +
		"From: <sip:" + t.Login + ">;tag=1928301774\r\n" +
		"Call-ID: " + hex.EncodeToString(id[:]) + "\r\n" +
		"CSeq: 63104 OPTIONS\r\n" +
		"Contact: <sip:" + t.Login + ">\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return failf(err, "%s: sending OPTIONS", label)
	}
	var status string
	if t.UDP {
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			return failf(err, "%s: OPTIONS", label)
		}
		status, _, _ = strings.Cut(string(buf[:n]), "\n")
	} else {
		br := bufio.NewReaderSize(io.LimitReader(c, maxLineBytes), 1024)
		line, err := br.ReadString('\n')
		if err != nil && line == "" {
			return failf(err, "%s: OPTIONS", label)
		}
		status = line
	}
	status = strings.TrimRight(status, "\r\n")
	if !strings.HasPrefix(status, "SIP/2.0 200 OK") {
		return errorf("%s: OPTIONS: %s", label, quoteLine(status))
	}
	return nil
}
