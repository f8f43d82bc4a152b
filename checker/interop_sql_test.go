package checker

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The password of the test users: long enough to be hidden if a driver ever quoted it.
const sqlTestPasswd = "Pw-s3cret-42"

// startMariaDB runs Debian's MariaDB server (package mariadb-server) on 127.0.0.1 and ::1 with a private data
// directory and socket, with TLS (a self-signed certificate) or without: database ldtest with a table "ok"
// of two rows and an empty table "empty", user ld / sqlTestPasswd allowed to read it from anywhere, and
// user ldtls / sqlTestPasswd likewise but only over TLS.
func startMariaDB(t testing.TB, withTLS bool) (*debServer, uint16) {
	t.Helper()
	install := debBinary(t, "mariadb-server", "mariadb-install-db", "/usr/bin/mariadb-install-db")
	bin := debBinary(t, "mariadb-server", "mariadbd", "/usr/sbin/mariadbd")
	dir := ownedTempDir(t, nil)
	data := filepath.Join(dir, "data")
	runAs(t, nil, install, "--no-defaults", "--datadir="+data, "--user="+sqlRunUser(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")
	init := filepath.Join(dir, "init.sql")
	if err := os.WriteFile(init, []byte(`CREATE DATABASE ldtest;
CREATE TABLE ldtest.ok (x INT);
INSERT INTO ldtest.ok VALUES (1), (2);
CREATE TABLE ldtest.empty (x INT);
CREATE USER 'ld'@'%' IDENTIFIED BY '`+sqlTestPasswd+`';
GRANT SELECT ON ldtest.* TO 'ld'@'%';
CREATE USER 'ldtls'@'%' IDENTIFIED BY '`+sqlTestPasswd+`' REQUIRE SSL;
GRANT SELECT ON ldtest.* TO 'ldtls'@'%';
`), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	args := []string{"--no-defaults", "--user=" + sqlRunUser(),
		"--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--port=" + itoa(int(port)), "--bind-address=127.0.0.1,::1", "--skip-name-resolve", "--skip-log-bin",
		"--init-file=" + init, "--innodb-buffer-pool-size=16M"}
	if withTLS {
		cert, key := writeSelfSigned(t, dir, nil)
		args = append(args, "--ssl-cert="+cert, "--ssl-key="+key)
	}
	s := startDebServer(t, "mariadbd", nil, "ready for connections", bin, args...)
	return s, port
}

// startPostgres runs Debian's PostgreSQL server (package postgresql) as an unprivileged user on 127.0.0.1 and
// ::1, its socket in a private directory, with TLS (a self-signed certificate) or without: database ldtest
// with a table "ok" of two rows and an empty table "empty", user ld / sqlTestPasswd (scram-sha-256 over
// TCP), and user ldtls / sqlTestPasswd likewise but only over TLS.
func startPostgres(t testing.TB, withTLS bool) (*debServer, uint16) {
	t.Helper()
	bindir := "/usr/lib/postgresql/15/bin"
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(m) > 0 {
		bindir = filepath.Dir(m[len(m)-1])
	}
	bin := debBinary(t, "postgresql", filepath.Join(bindir, "postgres"))
	psql := debBinary(t, "postgresql-client", "psql", "/usr/bin/psql")
	cred := unprivileged(t)
	dir := ownedTempDir(t, cred)
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(sqlTestPasswd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	runAs(t, cred, filepath.Join(bindir, "initdb"), "-D", data, "-U", "ld", "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-N")
	// ldtls only over TLS: the first matching line of pg_hba.conf decides.
	hba := filepath.Join(data, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, append([]byte("hostnossl all ldtls all reject\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	args := []string{"-D", data, "-k", dir, "-p", itoa(int(port)), "-c", "listen_addresses=127.0.0.1,::1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=20"}
	if withTLS {
		cert, key := writeSelfSigned(t, dir, cred)
		args = append(args, "-c", "ssl=on", "-c", "ssl_cert_file="+cert, "-c", "ssl_key_file="+key)
	}
	s := startDebServer(t, "postgres", cred, "database system is ready to accept connections", bin, args...)
	runAs(t, cred, psql, "-h", dir, "-p", itoa(int(port)), "-U", "ld", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE DATABASE ldtest")
	runAs(t, cred, psql, "-h", dir, "-p", itoa(int(port)), "-U", "ld", "-d", "ldtest", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE TABLE ok (x INT); INSERT INTO ok VALUES (1), (2); CREATE TABLE empty (x INT); "+
			"CREATE USER ldtls PASSWORD '"+sqlTestPasswd+"'; GRANT SELECT ON ok TO ldtls;")
	return s, port
}

func sqlRunUser() string {
	if os.Geteuid() == 0 {
		return "root" // mariadbd runs as root only when told so
	}
	u := os.Getenv("USER")
	if u == "" {
		u = "nobody"
	}
	return u
}

// sqlHangingTarget accepts connections and never says a word (a server that hangs).
func sqlHangingTarget(t *testing.T) *Target {
	l := listen(t, "tcp4")
	serve(t, l, func(c net.Conn) { io.Copy(io.Discard, c) })
	return target(t, l.Addr())
}

// sqlCases are the checks every SQL service must pass against its real server: label is the service
// name, check its checker; badPasswd (ADDR stands for the client address) and noTable are the server's own
// messages for a wrong password and a missing table.
func sqlCases(t *testing.T, service string, check Checker, port uint16, badPasswd, noTable string) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		tg := &Target{Addr: mustAddr(addr), Port: port, RIP: sqlRIP(addr), Service: service,
			Login: "ld", Passwd: sqlTestPasswd, Database: "ldtest", Request: "/SELECT x FROM ok"}
		label := service + " " + hostPort(tg.Addr, port)
		t.Run(service+" "+addr, func(t *testing.T) {
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg), "")
			tg.Request = "/SELECT x FROM ok WHERE x > 5"
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg), label+": query returned no rows")
			tg.Request = "/SELECT x FROM empty"
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg), label+": query returned no rows")
			tg.Request = "/SELECT x FROM missing"
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg), label+": query failed: "+noTable)
			tg.Request, tg.Passwd = "/SELECT x FROM ok", "wrong-"+sqlTestPasswd
			err := check.Check(timeout(t, 20*time.Second), tg)
			wantErr(t, err, label+": login failed: "+strings.ReplaceAll(badPasswd, "ADDR", addr))
			if err != nil && strings.Contains(err.Error(), sqlTestPasswd) {
				t.Errorf("the error shows the password: %v", err)
			}
			tg.Passwd, tg.Login = sqlTestPasswd, ""
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg),
				"Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding "+tg.RIP+".")
			tg.Login, tg.Request = "ld", "/"
			wantErr(t, check.Check(timeout(t, 20*time.Second), tg),
				"Error: Must specify a login and request string for MySQL, Oracle and PostgreSQL checks. Not adding "+tg.RIP+".")
		})
	}
	t.Run(service+" refused", func(t *testing.T) {
		tg := closedPort(t, "tcp4")
		tg.Login, tg.Request = "ld", "/SELECT 1"
		wantErr(t, check.Check(timeout(t, 20*time.Second), tg), service+" "+hostPort(tg.Addr, tg.Port)+": connection failed: connection refused")
	})
	t.Run(service+" hangs", func(t *testing.T) {
		tg := sqlHangingTarget(t)
		tg.Login, tg.Request = "ld", "/SELECT 1"
		var err error
		d := elapsed(func() { err = check.Check(timeout(t, 300*time.Millisecond), tg) })
		wantErr(t, err, service+" "+hostPort(tg.Addr, tg.Port)+": login failed: timed out")
		if d > 5*time.Second {
			t.Errorf("the check took %v with a timeout of 300ms", d)
		}
	})
}

func sqlRIP(s string) string {
	if strings.Contains(s, ":") {
		return "[" + s + "]"
	}
	return s
}

// stoppedMidQuery starts a query that takes 20 s, stops the server 1 s into it, and wants the check to
// fail at once with want.
func stoppedMidQuery(t *testing.T, check Checker, s *debServer, sig syscall.Signal, tg *Target, want string) {
	t.Helper()
	res := make(chan error, 1)
	start := time.Now()
	go func() { res <- check.Check(timeout(t, 60*time.Second), tg) }()
	time.Sleep(time.Second)
	s.stop(t, sig)
	select {
	case err := <-res:
		wantErr(t, err, want)
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("the check took %v", d)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the check did not return after the server stopped")
	}
}

// TestMySQLAgainstMariaDB runs service=mysql against Debian's MariaDB server.
func TestMySQLAgainstMariaDB(t *testing.T) {
	noLeak(t)
	s, port := startMariaDB(t, false)
	_, tlsPort := startMariaDB(t, true)
	sqlCases(t, "mysql", MySQL, port,
		"Error 1045 (28000): Access denied for user 'ld'@'ADDR' (using password: YES)",
		"Error 1146 (42S02): Table 'ldtest.missing' doesn't exist")
	// TLS when the server offers it (unverified: the certificate is self-signed), plain text when not.
	tlsOnly(t, MySQL, port, tlsPort, "mysql 127.0.0.1:"+itoa(int(port))+
		": login failed: Error 1045 (28000): Access denied for user 'ldtls'@'127.0.0.1' (using password: YES)")
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: port, RIP: "127.0.0.1", Login: "ld", Passwd: sqlTestPasswd,
		Database: "ldtest", Request: "/SELECT SLEEP(20) FROM ok"}
	stoppedMidQuery(t, MySQL, s, syscall.SIGTERM, tg, "mysql 127.0.0.1:"+itoa(int(port))+": query failed: connection closed by peer")
}

// TestPgSQLAgainstPostgreSQL runs service=pgsql against Debian's PostgreSQL server.
func TestPgSQLAgainstPostgreSQL(t *testing.T) {
	noLeak(t)
	s, port := startPostgres(t, false)
	_, tlsPort := startPostgres(t, true)
	sqlCases(t, "pgsql", PgSQL, port,
		`FATAL: password authentication failed for user "ld" (SQLSTATE 28P01)`,
		`ERROR: relation "missing" does not exist (SQLSTATE 42P01)`)
	// TLS when the server offers it (sslmode=prefer, unverified), plain text when not.
	tlsOnly(t, PgSQL, port, tlsPort, "pgsql 127.0.0.1:"+itoa(int(port))+
		`: login failed: FATAL: pg_hba.conf rejects connection for host "127.0.0.1", user "ldtls", database "ldtest", no encryption (SQLSTATE 28000)`)
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: port, RIP: "127.0.0.1", Login: "ld", Passwd: sqlTestPasswd,
		Database: "ldtest", Request: "/SELECT pg_sleep(20) FROM ok"}
	stoppedMidQuery(t, PgSQL, s, syscall.SIGINT, tg, "pgsql 127.0.0.1:"+itoa(int(port))+
		": query failed: FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")
}

// tlsOnly checks as the user that may log in only over TLS: wantPlain is the error from the server without
// TLS (which proves the check did not use TLS there); with TLS the check must pass.
func tlsOnly(t *testing.T, check Checker, plainPort, tlsPort uint16, wantPlain string) {
	t.Helper()
	tg := &Target{Addr: mustAddr("127.0.0.1"), Port: plainPort, RIP: "127.0.0.1", Login: "ldtls", Passwd: sqlTestPasswd,
		Database: "ldtest", Request: "/SELECT x FROM ok"}
	wantErr(t, check.Check(timeout(t, 20*time.Second), tg), wantPlain)
	tg.Port = tlsPort
	wantErr(t, check.Check(timeout(t, 20*time.Second), tg), "")
	tg.Login = "ld" // a user who may use either: TLS is used when offered, and works
	wantErr(t, check.Check(timeout(t, 20*time.Second), tg), "")
}

// BenchmarkSQLCheck: one check per iteration (connect, login, SELECT of two rows, close) against Debian's
// MariaDB and PostgreSQL, without and with TLS offered. The servers are separate processes: only the
// checker's CPU is counted.
func BenchmarkSQLCheck(b *testing.B) {
	for _, tc := range []struct {
		name  string
		check Checker
		start func(testing.TB, bool) (*debServer, uint16)
		tls   bool
	}{
		{"mysql", MySQL, startMariaDB, false}, {"mysql-tls", MySQL, startMariaDB, true},
		{"pgsql", PgSQL, startPostgres, false}, {"pgsql-tls", PgSQL, startPostgres, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			_, port := tc.start(b, tc.tls)
			tg := &Target{Addr: mustAddr("127.0.0.1"), Port: port, RIP: "127.0.0.1", Login: "ld", Passwd: sqlTestPasswd,
				Database: "ldtest", Request: "/SELECT x FROM ok"}
			if err := checkWithin(tc.check, 10*time.Second, tg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if err := checkWithin(tc.check, 10*time.Second, tg); err != nil {
					b.Fatal(err)
				}
			}
			reportCores(b, cpuTime()-start, b.N)
		})
	}
}
