package checker

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/go-sql-driver/mysql"
)

// MySQL is the negotiate check of service=mysql (MySQL and MariaDB): log in as login with passwd to
// database at the check port, run request (without its leading '/') with the text protocol, and be
// healthy when it succeeds and returns at least one row. One connection, no pool; ctx's deadline bounds
// the connect, the login and the query. Without a login or a request the check fails with ldirectord's
// own error line. The password never appears in an error.
var MySQL Checker = Func(mysqlCheck)

func mysqlCheck(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	query, err := sqlQuery(t)
	if err != nil {
		return err
	}
	label := "mysql " + ap.String()

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", ap.String()
	cfg.User, cfg.Passwd, cfg.DBName = t.Login, t.Passwd, t.Database
	// TLS when the server offers it, unverified (a health check, not a trust decision), else plain: the
	// default of the MySQL and MariaDB clients (ssl-mode=PREFERRED). It also lets caching_sha2_password
	// (MySQL 8) log in without fetching the server's RSA key.
	cfg.TLSConfig = "preferred"
	log := &mysqlLog{}
	cfg.Logger = log
	var dialErr error
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := dial(ctx, "tcp", ap)
		if err != nil {
			dialErr = err
			return nil, err
		}
		return c, nil
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return sqlError(t, err, "%s: connection failed", label)
	}
	dc, err := connector.Connect(ctx)
	if err != nil {
		if dialErr != nil {
			return sqlError(t, dialErr, "%s: connection failed", label)
		}
		return sqlError(t, log.cause(ctx, err), "%s: login failed", label)
	}
	defer dc.Close()
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return errorf("%s: the driver cannot run a query", label)
	}
	rows, err := q.QueryContext(ctx, query, nil)
	if err != nil {
		return sqlError(t, log.cause(ctx, err), "%s: query failed", label)
	}
	dest := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(dest)
	rows.Close() // reads what is left of the result, within ctx; the verdict is already known
	switch {
	case err == io.EOF:
		return errorf("%s: query returned no rows", label)
	case err != nil:
		return sqlError(t, log.cause(ctx, err), "%s: query failed", label)
	}
	return nil
}

// mysqlLog receives what the driver would print on stderr (a check must not write anywhere) and keeps the
// last error it was told about: the driver logs the cause of a broken connection and returns only
// "invalid connection".
type mysqlLog struct {
	mu   sync.Mutex
	last error
}

// Print implements mysql.Logger. The driver may call it from its context watcher goroutine.
func (l *mysqlLog) Print(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range v {
		if err, ok := x.(error); ok {
			l.last = err
		}
	}
}

// cause is the best description of err: the context's error when ctx ended, the error the driver logged
// when it returned only "invalid connection", else err itself.
func (l *mysqlLog) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.last != nil {
			return l.last
		}
	}
	return err
}
