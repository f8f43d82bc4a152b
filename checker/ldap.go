package checker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
)

// LDAP and LDAPS are the negotiate checks of service=ldap and ldaps (LDAP over TLS from the first byte; the
// certificate is not verified, as in ldirectord, whose Net::LDAP defaults to verify => 'none'). They speak
// LDAPv3 (RFC 4511): a simple bind as login with passwd when both are set, else an anonymous bind; then a
// search with base = request without its leading '/' ("" = the root DSE), scope base, filter
// (objectClass=*), size limit 2, no attributes ("1.1"); then an unbind. Healthy when the bind succeeds,
// the search ends in success with exactly one entry and, when receive is set, the entry's DN matches it.
// Every failure is one error (ldirectord counted a connect or bind failure twice, W10). The daemon bounds
// the check by checktimeout, as ldirectord does.
var (
	LDAP  Checker = Func(func(ctx context.Context, t *Target) error { return ldapCheck(ctx, t, false) })
	LDAPS Checker = Func(func(ctx context.Context, t *Target) error { return ldapCheck(ctx, t, true) })
)

const (
	// maxLDAPBytes bounds everything one check reads from the server (and so every message).
	maxLDAPBytes = 1 << 20
	// ldapSizeLimit is the search's sizeLimit: enough to tell one entry from more than one.
	ldapSizeLimit = 2
)

// BER tags (X.690) and LDAPv3 protocolOp tags (RFC 4511 section 4).
const (
	berBoolean     = 0x01
	berInteger     = 0x02
	berOctetString = 0x04
	berEnumerated  = 0x0a
	berSequence    = 0x30

	ldapBindRequest      = 0x60 // [APPLICATION 0] constructed
	ldapBindResponse     = 0x61
	ldapUnbindRequest    = 0x42 // [APPLICATION 2] primitive NULL
	ldapSearchRequest    = 0x63
	ldapSearchResEntry   = 0x64
	ldapSearchResDone    = 0x65
	ldapSearchResRef     = 0x73
	ldapExtendedResponse = 0x78
	ldapAuthSimple       = 0x80 // AuthenticationChoice simple [0] primitive
	ldapFilterPresent    = 0x87 // Filter present [7] primitive

	ldapSuccess           = 0
	ldapSizeLimitExceeded = 4

	// The message ids of the three requests.
	ldapBindID   = 1
	ldapSearchID = 2
	ldapUnbindID = 3
)

func ldapCheck(ctx context.Context, t *Target, tlsOn bool) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	re, err := receiveOrNil(t.Receive)
	if err != nil {
		return err
	}
	label := "ldap " + ap.String()
	if tlsOn {
		label = "ldaps " + ap.String()
	}
	c, err := dial(ctx, "tcp", ap)
	if err != nil {
		return failf(err, "%s: connection failed", label)
	}
	defer c.Close()
	var rw net.Conn = c
	if tlsOn {
		tc := tls.Client(c, tlsConfig(""))
		if err := tc.Handshake(); err != nil {
			return failf(err, "%s: connection failed: tls handshake", label)
		}
		rw = tc
	}
	lc := &ldapConn{rw: rw, lr: io.LimitedReader{R: rw, N: maxLDAPBytes}}
	lc.br = readerPool.Get().(*bufio.Reader)
	lc.br.Reset(&lc.lr)
	defer func() { lc.br.Reset(nil); readerPool.Put(lc.br) }()

	user, pw := "", ""
	if t.Login != "" && t.Passwd != "" {
		user, pw = t.Login, t.Passwd
	}
	if _, err := rw.Write(ldapBind(ldapBindID, user, pw)); err != nil {
		return failf(err, "%s: bind failed", label)
	}
	m, err := lc.read(ldapBindID, ldapBindResponse)
	if err != nil {
		return failf(err, "%s: bind failed", label)
	}
	if m.code != ldapSuccess {
		return errorf("%s: bind failed: %s", label, m.result())
	}

	dn, err := ldapSearch(lc, label, stripSlash(t.Request))
	rw.Write(ldapUnbind(ldapUnbindID)) // best effort: the verdict is already known
	if err != nil {
		return err
	}
	if re != nil && !re.MatchString(dn) {
		return errorf("%s: response mismatch: dn %q does not match %q", label, dn, t.Receive)
	}
	return nil
}

// ldapSearch sends the base search and reads its answers up to searchResDone. It returns the DN of the
// one entry found.
func ldapSearch(lc *ldapConn, label, base string) (dn string, err error) {
	if _, err := lc.rw.Write(ldapSearchBase(ldapSearchID, base)); err != nil {
		return "", failf(err, "%s: search failed", label)
	}
	n := 0
	for {
		m, err := lc.read(ldapSearchID, ldapSearchResEntry, ldapSearchResRef, ldapSearchResDone)
		if err != nil {
			var ce *checkError
			if errors.As(err, &ce) && ce.err == nil {
				return "", errorf("%s: search failed: %s", label, ce.msg) // a server notice or a bad answer
			}
			return "", failf(err, "%s: no answer received", label)
		}
		switch m.op {
		case ldapSearchResEntry:
			if n++; n == 1 {
				dn = m.dn
			}
		case ldapSearchResDone:
			if m.code != ldapSuccess && m.code != ldapSizeLimitExceeded {
				return "", errorf("%s: search failed: %s", label, m.result())
			}
			if n != 1 {
				return "", errorf("%s: response mismatch: %d entries", label, n)
			}
			return dn, nil
		}
	}
}

func stripSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// ldapConn reads LDAP messages from a server, at most maxLDAPBytes in all.
type ldapConn struct {
	rw net.Conn
	lr io.LimitedReader
	br *bufio.Reader
}

// read returns the next message, which must answer message id with one of the ops. A notice of
// disconnection (or any unsolicited notification) is an error carrying its result.
func (lc *ldapConn) read(id int64, ops ...byte) (ldapMsg, error) {
	m, err := readLDAP(lc.br)
	if err != nil {
		var ce *checkError
		if lc.lr.N == 0 && !errors.As(err, &ce) {
			return m, errorf("more than %d MiB of answers", maxLDAPBytes>>20)
		}
		return m, err
	}
	if m.id == 0 && m.op == ldapExtendedResponse {
		return m, errorf("server notice: %s", m.result())
	}
	if m.id == id {
		for _, op := range ops {
			if m.op == op {
				return m, nil
			}
		}
	}
	return m, errorf("bad answer: %s with message id %d", ldapOpName(m.op), m.id)
}

// ldapMsg is the part of an LDAPMessage a check needs.
type ldapMsg struct {
	id   int64
	op   byte   // protocolOp tag
	code int64  // resultCode of an LDAPResult (bindResponse, searchResDone, extendedResponse)
	diag string // its diagnosticMessage
	dn   string // objectName of a searchResEntry
}

// result describes an LDAPResult: "invalidCredentials (49): <diagnosticMessage>".
func (m ldapMsg) result() string {
	s := fmt.Sprintf("resultCode %d", m.code)
	if name, ok := ldapResultNames[m.code]; ok {
		s = fmt.Sprintf("%s (%d)", name, m.code)
	}
	if m.diag != "" {
		s += ": " + quoteLine(m.diag)
	}
	return s
}

// readLDAP reads one LDAPMessage envelope (at most maxLDAPBytes) and parses it.
func readLDAP(r *bufio.Reader) (ldapMsg, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return ldapMsg{}, err
	}
	if tag != berSequence {
		return ldapMsg{}, errorf("bad answer: not an LDAP message (first byte 0x%02x)", tag)
	}
	l, err := r.ReadByte()
	if err != nil {
		return ldapMsg{}, noEOF(err)
	}
	n := uint64(l)
	if l&0x80 != 0 {
		k := int(l & 0x7f)
		if k == 0 || k > 8 {
			return ldapMsg{}, errorf("bad answer: length byte 0x%02x", l)
		}
		n = 0
		for range k {
			b, err := r.ReadByte()
			if err != nil {
				return ldapMsg{}, noEOF(err)
			}
			n = n<<8 | uint64(b)
		}
	}
	if n > maxLDAPBytes {
		return ldapMsg{}, errorf("bad answer: message of %d bytes, more than %d MiB", n, maxLDAPBytes>>20)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return ldapMsg{}, noEOF(err)
	}
	return parseLDAPMessage(buf)
}

// noEOF turns an EOF inside a message into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

var errBERTruncated = errorf("bad answer: truncated BER element")

// parseLDAPMessage parses the contents of an LDAPMessage SEQUENCE: messageID, protocolOp, and (ignored)
// controls.
func parseLDAPMessage(b []byte) (ldapMsg, error) {
	var m ldapMsg
	tag, v, rest, err := berNext(b)
	if err != nil {
		return m, err
	}
	if tag != berInteger {
		return m, errorf("bad answer: message id has tag 0x%02x", tag)
	}
	if m.id, err = berInt(v); err != nil {
		return m, err
	}
	m.op, v, _, err = berNext(rest)
	if err != nil {
		return m, err
	}
	switch m.op {
	case ldapBindResponse, ldapSearchResDone, ldapExtendedResponse:
		// LDAPResult: resultCode ENUMERATED, matchedDN, diagnosticMessage, ...
		tag, c, rest, err := berNext(v)
		if err != nil {
			return m, err
		}
		if tag != berEnumerated {
			return m, errorf("bad answer: resultCode has tag 0x%02x", tag)
		}
		if m.code, err = berInt(c); err != nil {
			return m, err
		}
		if _, _, rest, err = berNext(rest); err != nil { // matchedDN
			return m, err
		}
		tag, c, _, err = berNext(rest)
		if err != nil {
			return m, err
		}
		if tag != berOctetString {
			return m, errorf("bad answer: diagnosticMessage has tag 0x%02x", tag)
		}
		m.diag = string(c)
	case ldapSearchResEntry:
		tag, c, _, err := berNext(v)
		if err != nil {
			return m, err
		}
		if tag != berOctetString {
			return m, errorf("bad answer: objectName has tag 0x%02x", tag)
		}
		m.dn = string(c)
	}
	return m, nil
}

// berNext splits the first BER element (single-byte tag, definite length) off b.
func berNext(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errBERTruncated
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, errorf("bad answer: multi-byte tag 0x%02x", tag)
	}
	n, hdr := uint64(b[1]), 2
	if b[1]&0x80 != 0 {
		k := int(b[1] & 0x7f)
		if k == 0 || k > 8 {
			return 0, nil, nil, errorf("bad answer: length byte 0x%02x", b[1])
		}
		if len(b) < 2+k {
			return 0, nil, nil, errBERTruncated
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | uint64(x)
		}
		hdr = 2 + k
	}
	if n > uint64(len(b)-hdr) {
		return 0, nil, nil, errBERTruncated
	}
	end := hdr + int(n)
	return tag, b[hdr:end], b[end:], nil
}

// berInt decodes a two's-complement INTEGER or ENUMERATED of at most 8 bytes.
func berInt(v []byte) (int64, error) {
	if len(v) == 0 || len(v) > 8 {
		return 0, errorf("bad answer: integer of %d bytes", len(v))
	}
	n := int64(int8(v[0]))
	for _, x := range v[1:] {
		n = n<<8 | int64(x)
	}
	return n, nil
}

// berAppend appends one BER element with a definite length.
func berAppend(b []byte, tag byte, content []byte) []byte {
	b = append(b, tag)
	switch n := len(content); {
	case n < 0x80:
		b = append(b, byte(n))
	case n <= 0xff:
		b = append(b, 0x81, byte(n))
	case n <= 0xffff:
		b = append(b, 0x82, byte(n>>8), byte(n))
	default:
		b = append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, content...)
}

// berAppendInt appends a non-negative INTEGER or ENUMERATED in its shortest form.
func berAppendInt(b []byte, tag byte, v uint32) []byte {
	var c []byte
	for v > 0x7f {
		c = append([]byte{byte(v)}, c...)
		v >>= 8
	}
	return berAppend(b, tag, append([]byte{byte(v)}, c...))
}

// ldapMessage wraps a protocolOp into an LDAPMessage with message id id.
func ldapMessage(id uint32, op []byte) []byte {
	c := berAppendInt(nil, berInteger, id)
	return berAppend(nil, berSequence, append(c, op...))
}

// ldapBind is an LDAPv3 simple bindRequest (anonymous when name and password are empty).
func ldapBind(id uint32, name, password string) []byte {
	c := berAppendInt(nil, berInteger, 3)
	c = berAppend(c, berOctetString, []byte(name))
	c = berAppend(c, ldapAuthSimple, []byte(password))
	return ldapMessage(id, berAppend(nil, ldapBindRequest, c))
}

// ldapSearchBase is a searchRequest for the entry base itself: scope baseObject, derefAliases
// derefFindingBaseObj (Net::LDAP's default), sizeLimit ldapSizeLimit, no time limit, filter
// (objectClass=*), attributes "1.1" (none: only the DN matters).
func ldapSearchBase(id uint32, base string) []byte {
	c := berAppend(nil, berOctetString, []byte(base))
	c = berAppendInt(c, berEnumerated, 0) // scope baseObject
	c = berAppendInt(c, berEnumerated, 2) // derefFindingBaseObj
	c = berAppendInt(c, berInteger, ldapSizeLimit)
	c = berAppendInt(c, berInteger, 0) // timeLimit: none, ctx bounds the check
	c = berAppend(c, berBoolean, []byte{0})
	c = berAppend(c, ldapFilterPresent, []byte("objectClass"))
	c = berAppend(c, berSequence, berAppend(nil, berOctetString, []byte("1.1")))
	return ldapMessage(id, berAppend(nil, ldapSearchRequest, c))
}

// ldapUnbind is an unbindRequest.
func ldapUnbind(id uint32) []byte {
	return ldapMessage(id, []byte{ldapUnbindRequest, 0})
}

func ldapOpName(op byte) string {
	switch op {
	case ldapBindResponse:
		return "bindResponse"
	case ldapSearchResEntry:
		return "searchResEntry"
	case ldapSearchResDone:
		return "searchResDone"
	case ldapSearchResRef:
		return "searchResRef"
	case ldapExtendedResponse:
		return "extendedResponse"
	}
	return fmt.Sprintf("protocolOp 0x%02x", op)
}

// ldapResultNames are the resultCode names of RFC 4511 appendix A.
var ldapResultNames = map[int64]string{
	0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 4: "sizeLimitExceeded",
	5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported", 8: "strongerAuthRequired",
	10: "referral", 11: "adminLimitExceeded", 12: "unavailableCriticalExtension",
	13: "confidentialityRequired", 14: "saslBindInProgress", 16: "noSuchAttribute",
	17: "undefinedAttributeType", 18: "inappropriateMatching", 19: "constraintViolation",
	20: "attributeOrValueExists", 21: "invalidAttributeSyntax", 32: "noSuchObject", 33: "aliasProblem",
	34: "invalidDNSyntax", 36: "aliasDereferencingProblem", 48: "inappropriateAuthentication",
	49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
	53: "unwillingToPerform", 54: "loopDetect", 64: "namingViolation", 65: "objectClassViolation",
	66: "notAllowedOnNonLeaf", 67: "notAllowedOnRDN", 68: "entryAlreadyExists",
	69: "objectClassModsProhibited", 71: "affectsMultipleDSAs", 80: "other",
}
