package checker

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// PgSQL is the negotiate check of service=pgsql (PostgreSQL): log in as login with passwd to database at
// the check port (TLS when the server offers it, else plain, as libpq's default sslmode=prefer; the
// certificate is not verified), run request (without its leading '/') as one statement of the extended
// protocol, and be healthy when it succeeds and returns at least one row. One connection, no pool; ctx's
// deadline bounds the connect, the login and the query. Without a login or a request the check fails with
// ldirectord's own error line. The password never appears in an error.
var PgSQL Checker = Func(pgsqlCheck)

func pgsqlCheck(ctx context.Context, t *Target) error {
	ap, err := addrPort(t)
	if err != nil {
		return err
	}
	query, err := sqlQuery(t)
	if err != nil {
		return err
	}
	label := "pgsql " + ap.String()

	// Only host, port and sslmode go through the connection string (nothing there needs quoting); the
	// rest is set on the parsed config, so no value of the config can change another setting.
	cfg, err := pgconn.ParseConfig("host=" + ap.Addr().String() + " port=" + strconv.Itoa(int(ap.Port())) +
		" sslmode=prefer")
	if err != nil {
		return sqlError(t, err, "%s: connection failed", label)
	}
	cfg.User, cfg.Password, cfg.Database = t.Login, t.Passwd, t.Database
	cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{ap.Addr().String()}, nil }
	var dialErr error
	dialed := false
	cfg.DialFunc = func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := dial(ctx, "tcp", ap)
		if err != nil {
			dialErr = err
			return nil, err
		}
		dialed = true
		return c, nil
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		if !dialed && dialErr != nil {
			return sqlError(t, dialErr, "%s: connection failed", label)
		}
		return sqlError(t, pgCause(ctx, err), "%s: login failed", label)
	}
	defer pc.Close(ctx)
	rr := pc.ExecParams(ctx, query, nil, nil, nil, nil)
	n := 0
	for rr.NextRow() {
		n++
	}
	if _, err := rr.Close(); err != nil {
		return sqlError(t, pgCause(ctx, err), "%s: query failed", label)
	}
	if n == 0 {
		return errorf("%s: query returned no rows", label)
	}
	return nil
}

// pgCause is the part of a pgconn error that says why: the server's error (`FATAL: password
// authentication failed for user "u" (SQLSTATE 28P01)`), the context's end, or the error of the last
// connection attempt (a failed login is one error per attempt, TLS then plain, each on its own line).
func pgCause(ctx context.Context, err error) error {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &pe):
		return errors.New(pe.Error())
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ce):
		err = ce.Unwrap()
		if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
			all := j.Unwrap()
			err = all[len(all)-1]
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // without pgconn's "127.0.0.1:5432 (127.0.0.1): ", which the label says
		}
	}
	return err
}
