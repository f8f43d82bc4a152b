// Package alert sends ldirectord's e-mail alerts (emailalert=, emailalertfreq=, emailalertstatus=,
// smtp=) without ever blocking the daemon on a mail server.
package alert

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/ldirectord-go/ldirectord/config"
	"github.com/sirupsen/logrus"
)

// Log phrases, exact as ldirectord writes them.
const (
	// LogPrefix starts the line logged for every alert that passes the filters: `emailalert: <subject>`.
	LogPrefix = "emailalert: "
	// FailedSMTP is logged when a message could not be sent through smtp=.
	FailedSMTP = "failed to send SMTP email message"
	// FailedMail is logged when a message could not be sent through sendmail.
	FailedMail = "failed to send email message"
	// Inaccessible starts the reminder subject sent every emailalertfreq for a real that stays down.
	Inaccessible = "Inaccessible real server: "
)

// Options configure a Mailer. Zero values give ldirectord's behaviour.
type Options struct {
	Log logrus.FieldLogger
	// Hostname appears in the body (`ldirectord host:`) and in the sender address; default os.Hostname.
	Hostname string
	// From is the global emailalertfrom (the From header only); "" means <user>@<hostname>.
	From string
	// SMTPPort is the port of the smtp= server (default 25, as in ldirectord). A seam for tests.
	SMTPPort int
	// Timeout bounds the sending of one message, SMTP dialogue or sendmail run (default 30s; Perl's
	// Net::SMTP uses 120s per command).
	Timeout time.Duration
	// Sendmail is the program used without smtp= (default /usr/sbin/sendmail), run as `<Sendmail> -t`.
	Sendmail string
	// QueueSize bounds the messages waiting to be sent (default 256); beyond it alerts are dropped and
	// logged as failed.
	QueueSize int
	// Now is the clock for reminder bookkeeping (default time.Now).
	Now func() time.Time
}

// Mailer implements the supervisor's Alerter. Alert decides, logs and queues synchronously; Run sends
// the queue and the reminders in the background.
type Mailer struct {
	o     Options
	user  string
	queue chan *message

	mu        sync.Mutex
	from      string
	reminders map[string]*reminder // key: `<RIP:PORT> (<virtual>)`
}

type reminder struct {
	v    *config.Virtual
	last time.Time
}

// message is one e-mail ready to send.
type message struct {
	smtp    string   // smtp= host, "" for sendmail
	from    string   // emailalertfrom
	to      string   // emailalert as written (To header)
	rcpts   []string // envelope recipients
	subject string
	body    string
}

// New returns a Mailer. Call Run to send what Alert queues.
func New(o Options) *Mailer {
	if o.Log == nil {
		l := logrus.New()
		l.Out = os.Stderr
		o.Log = l
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.SMTPPort == 0 {
		o.SMTPPort = 25
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Sendmail == "" {
		o.Sendmail = "/usr/sbin/sendmail"
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return &Mailer{o: o, user: name, from: o.From, queue: make(chan *message, o.QueueSize),
		reminders: map[string]*reminder{}}
}

// Alert handles one state-change message of virtual v (the log phrase, e.g. `Deleted real server:
// 10.0.0.2:80 (10.0.0.1:80)`) while the daemon is in phase. It keeps the reminder state (a real that went
// down or quiescent is remembered when emailalertfreq > 0; one that came back or was purged is forgotten)
// and, when emailalert is set and phase passes emailalertstatus, logs `emailalert: <msg>` and queues the
// mail. It never blocks.
func (m *Mailer) Alert(v *config.Virtual, phase config.AlertStatus, msg string) {
	// Perl mails a re-added quiescent real as "Quiescent ...".
	msg = strings.TrimPrefix(msg, "Readd ")
	var when time.Time // zero: forget the reminder
	if strings.HasPrefix(msg, "Deleted real server: ") || strings.HasPrefix(msg, "Quiescent real server: ") {
		when = m.o.Now()
	}
	m.send(v, phase, msg, realOf(msg), when)
}

// realOf is the `<RIP:PORT>` after the first ": " of a message.
func realOf(msg string) string {
	_, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return ""
	}
	r, _, _ := strings.Cut(rest, " ")
	return r
}

// send is ld_emailalert_send: reminder bookkeeping, then the status and recipient filters, then the log
// line and the queue.
func (m *Mailer) send(v *config.Virtual, phase config.AlertStatus, subject, rserver string, when time.Time) {
	if rserver != "" {
		id := rserver + " (" + v.String() + ")"
		m.mu.Lock()
		if when.IsZero() || v.EmailAlertFreq <= 0 {
			delete(m.reminders, id)
		} else {
			m.reminders[id] = &reminder{v: v, last: when}
		}
		m.mu.Unlock()
	}
	if phase&v.EmailAlertStatus == 0 || v.EmailAlert == "" {
		return
	}
	m.o.Log.Info(LogPrefix + subject)
	if v.ServiceName != "" {
		subject = "[" + v.ServiceName + "] " + subject
	}
	body := fmt.Sprintf("ldirectord host: %s\nLog-Message: %s\nDaemon-Status: %s\n",
		m.o.Hostname, subject, phase.String())
	if v.ServiceName != "" || v.Comment != "" {
		body += "\n"
		if v.ServiceName != "" {
			body += "Service name: " + v.ServiceName + "\n"
		}
		if v.Comment != "" {
			body += "Comment: " + v.Comment + "\n"
		}
		body += "\n"
	}
	msg := &message{smtp: v.SMTP, from: m.fromHeader(), to: v.EmailAlert, rcpts: Recipients(v.EmailAlert), subject: subject, body: body}
	select {
	case m.queue <- msg:
	default:
		m.failed(msg, fmt.Errorf("%d messages already waiting", cap(m.queue)))
	}
}

// Tick sends the reminders that are due at now: `Inaccessible real server: <RIP:PORT> (<virtual>)` for
// every real that has been down or quiescent for emailalertfreq since its last mail. Run calls it every
// second.
func (m *Mailer) Tick(now time.Time) {
	type due struct {
		id string
		v  *config.Virtual
	}
	var list []due
	m.mu.Lock()
	for id, r := range m.reminders {
		if now.Sub(r.last) >= r.v.EmailAlertFreq {
			list = append(list, due{id, r.v})
		}
	}
	m.mu.Unlock()
	for _, d := range list {
		rserver, _, _ := strings.Cut(d.id, " ")
		m.send(d.v, config.StatusRunning, Inaccessible+d.id, rserver, now)
	}
}

// Run sends queued messages one at a time and checks the reminders every second, until ctx is done.
// Then it sends what is still queued (the alerts of a clean stop) for at most Timeout, and returns.
func (m *Mailer) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case msg := <-m.queue:
			m.deliver(ctx, msg)
		case <-t.C:
			m.Tick(m.o.Now())
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.Background(), m.o.Timeout)
			defer cancel()
			for {
				select {
				case msg := <-m.queue:
					if drain.Err() != nil {
						m.failed(msg, drain.Err())
					} else {
						m.deliver(drain, msg)
					}
				default:
					return nil
				}
			}
		}
	}
}

func (m *Mailer) deliver(ctx context.Context, msg *message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.Timeout)
	defer cancel()
	var err error
	if msg.smtp != "" {
		err = m.sendSMTP(ctx, msg)
	} else {
		err = m.sendmail(ctx, msg)
	}
	if err != nil {
		m.failed(msg, err)
	}
}

func (m *Mailer) failed(msg *message, err error) {
	phrase := FailedMail
	if msg.smtp != "" {
		phrase = FailedSMTP
	}
	m.o.Log.WithError(err).Info(phrase)
}

// SetFrom changes the From header (emailalertfrom) for the messages queued from now on, after a reload.
func (m *Mailer) SetFrom(from string) {
	m.mu.Lock()
	m.from = from
	m.mu.Unlock()
}

func (m *Mailer) fromHeader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.from
}

// sender is the envelope sender: <user>@<hostname>.
func (m *Mailer) sender() string { return m.user + "@" + m.o.Hostname }
