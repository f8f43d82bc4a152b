package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Recipients splits an emailalert value into envelope addresses: a comma-separated list, each entry a
// bare address or `Name <address>`. (ldirectord passes the whole list as one RCPT, which servers reject.)
func Recipients(list string) []string {
	if addrs, err := mail.ParseAddressList(list); err == nil {
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = a.Address
		}
		return out
	}
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// header is the message header. ldirectord writes From, To and Subject only; Date is added because
// RFC 5322 requires it and some relays reject mail without it.
func (m *Mailer) header(msg *message, from string) string {
	var b strings.Builder
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	b.WriteString("To: " + msg.to + "\r\n")
	b.WriteString("Subject: " + msg.subject + "\r\n")
	b.WriteString("Date: " + m.o.Now().Format(time.RFC1123Z) + "\r\n")
	return b.String()
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// sendSMTP speaks SMTP to msg.smtp:SMTPPort: EHLO, MAIL FROM:<user@host>, one RCPT per recipient, DATA.
// ctx's deadline bounds the whole dialogue.
func (m *Mailer) sendSMTP(ctx context.Context, msg *message) error {
	addr := net.JoinHostPort(msg.smtp, strconv.Itoa(m.o.SMTPPort))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, msg.smtp)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	helo := m.o.Hostname
	if helo == "" {
		helo = "localhost.localdomain"
	}
	if err := c.Hello(helo); err != nil {
		return err
	}
	if err := c.Mail(m.sender()); err != nil {
		return err
	}
	for _, r := range msg.rcpts {
		if err := c.Rcpt(r); err != nil {
			var te *textproto.Error
			if errors.As(err, &te) {
				return fmt.Errorf("RCPT TO:<%s>: %d %s", r, te.Code, te.Msg)
			}
			return fmt.Errorf("RCPT TO:<%s>: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	from := msg.from
	if from == "" {
		from = m.sender()
	}
	if _, err := w.Write([]byte(m.header(msg, from) + "\r\n" + crlf(msg.body))); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// sendmail pipes the message to `<Sendmail> -t`, which takes the recipients from the To header. From is
// set only when emailalertfrom is (as Mail::Send does).
func (m *Mailer) sendmail(ctx context.Context, msg *message) error {
	cmd := exec.CommandContext(ctx, m.o.Sendmail, "-t")
	cmd.Stdin = strings.NewReader(m.header(msg, msg.from) + "\n" + msg.body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if s := strings.TrimSpace(out.String()); s != "" {
			return fmt.Errorf("%s -t: %w: %s", m.o.Sendmail, err, s)
		}
		return fmt.Errorf("%s -t: %w", m.o.Sendmail, err)
	}
	return nil
}
