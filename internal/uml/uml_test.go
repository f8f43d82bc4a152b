package uml

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKernelRun(t *testing.T) {
	if InGuest() {
		t.Fatal("TestKernelRun runs on the host")
	}
	res, err := Run(t.Context(), Options{
		Args:    []string{"/bin/sh", "-c", `echo "hello $FOO $` + GuestEnv + `"; grep -c "User Mode Linux" /proc/cpuinfo; head -1 /proc/net/ip_vs; echo x > /tmp/x && cat /tmp/x; ip -o link show lo | grep -c LOWER_UP; exit 3`},
		Env:     []string{"FOO=it's me"},
		Modules: []string{"ip_vs"},
		Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "hello it's me 1\n1\nIP Virtual Server version 1.2.1 (size=4096)\nx\n1\n"
	if string(res.Output) != want || res.ExitCode != 3 {
		t.Errorf("output %q, exit %d; want %q, exit 3\nconsole:\n%s", res.Output, res.ExitCode, want, res.Console)
	}
}

func TestKernelRunModuleMissing(t *testing.T) {
	_, err := Run(t.Context(), Options{Args: []string{"/bin/true"}, Modules: []string{"ip_vs", "no_such_module"}, Timeout: time.Minute})
	const want = "uml: guest setup failed: load module no_such_module: modprobe: FATAL: Module no_such_module not found in directory /mnt/modroot/lib/modules/"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Run error %v, want %q...", err, want)
	}
}

func TestKernelRunAutoload(t *testing.T) {
	// The kernel loads ip_vs_sh on demand; with NoAutoload it cannot.
	script := `modprobe ip_vs && ipvsadm -A -t 10.0.0.1:80 -s sh && ipvsadm -Ln | grep -c '10.0.0.1:80 sh'`
	for _, tc := range []struct {
		noAutoload bool
		out        string
		code       int
	}{
		{false, "1\n", 0},
		{true, "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.1.176\n", 1},
	} {
		res, err := Run(t.Context(), Options{Args: []string{"/bin/sh", "-c", script}, NoAutoload: tc.noAutoload, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Output) != tc.out || res.ExitCode != tc.code {
			t.Errorf("NoAutoload=%v: output %q exit %d, want %q exit %d", tc.noAutoload, res.Output, res.ExitCode, tc.out, tc.code)
		}
	}
}

func TestKernelRunTimeout(t *testing.T) {
	start := time.Now()
	res, err := Run(t.Context(), Options{Args: []string{"/bin/sleep", "300"}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 124 {
		t.Errorf("exit %d, want 124 (killed by the guest's timeout)", res.ExitCode)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v, beyond the 20s timeout", d)
	}
}

func TestRunNoKernel(t *testing.T) {
	_, err := Run(t.Context(), Options{Args: []string{"/bin/true"}, Kernel: "/nonexistent/linux"})
	const want = "uml: no kernel to boot: stat /nonexistent/linux: no such file or directory (install user-mode-linux: make deps)"
	if err == nil || err.Error() != want {
		t.Errorf("Run error %v, want %q", err, want)
	}
}

func TestRunKernelDies(t *testing.T) {
	// A "kernel" that exits at once must fail Run, never pass as a command that ran.
	_, err := Run(t.Context(), Options{Args: []string{"/bin/true"}, Kernel: "/bin/false"})
	if err == nil || !strings.HasPrefix(err.Error(), "uml: the kernel did not boot or did not run the command (kernel: exit status 1)") {
		t.Errorf("Run error %v", err)
	}
}

func TestKernelRunTests(t *testing.T) {
	RunTestsWith(t, Options{Modules: []string{"ip_vs"}, Timeout: 2 * time.Minute}, map[string]func(t *testing.T){
		"in guest": func(t *testing.T) {
			cpu, err := os.ReadFile("/proc/cpuinfo")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(cpu), "User Mode Linux") || !InGuest() || os.Getuid() != 0 {
				t.Errorf("InGuest %v, uid %d, cpuinfo:\n%s\nnot root in UML", InGuest(), os.Getuid(), cpu)
			}
		},
		"ipvs loaded": func(t *testing.T) {
			if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
				t.Error(err)
			}
		},
	})
}

// TestKernelRunTestsFails proves a failing guest test fails the host test: it runs this test binary's
// helper test below in a subprocess and reads its verdict.
func TestKernelRunTestsFails(t *testing.T) {
	if InGuest() {
		t.Fatal("runs on the host")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKernelHelperFailing$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "UML_HELPER_FAIL=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a failing guest test passed on the host:\n%s", out)
	}
	for _, want := range []string{
		"guest:     uml_test.go:",
		": deliberate failure in the guest",
		"kernel tests failed in the guest (exit status 1,",
		"--- FAIL: TestKernelHelperFailing",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("host output lacks %q:\n%s", want, out)
		}
	}
}

func TestKernelHelperFailing(t *testing.T) {
	if os.Getenv("UML_HELPER_FAIL") != "1" {
		return // only as TestKernelRunTestsFails's subprocess
	}
	RunTestsWith(t, Options{Timeout: time.Minute, Env: []string{"UML_HELPER_FAIL=1"}}, map[string]func(t *testing.T){
		"fails": func(t *testing.T) { t.Error("deliberate failure in the guest") },
	})
}

// TestKernelSwitch boots two kernels on one switch: each reaches the other by IP, and learns the other's
// MAC address, so the packets went through the switch; the kernels have no other interface but lo.
func TestKernelSwitch(t *testing.T) {
	if InGuest() {
		t.Fatal("runs on the host")
	}
	hostIfaces := func() string {
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return strings.Join(names, " ")
	}
	before := hostIfaces()
	o := Options{Timeout: 3 * time.Minute, Mem: "256M"}
	n := StartNet(t, Node{Name: "a", ID: 1, Options: o}, Node{Name: "b", ID: 2, Options: o})
	if after := hostIfaces(); after != before {
		t.Errorf("the host's interfaces changed: %q, before %q", after, before)
	}
	a, b := n.Machines[0], n.Machines[1]
	MustExec(t, a, time.Minute, "ip addr add 10.0.0.1/24 dev eth0 && ip link set eth0 up")
	MustExec(t, b, time.Minute, "ip addr add 10.0.0.2/24 dev eth0 && ip link set eth0 up")
	got := MustExec(t, a, time.Minute, `ping -c 1 -W 10 10.0.0.2 >/dev/null && echo reachable; ip neigh show 10.0.0.2 | cut -d" " -f1-5; ip -o link | cut -d: -f2`)
	want := "reachable\n10.0.0.2 dev eth0 lladdr 02:75:6d:02:00:00\n lo\n eth0\n"
	if got != want {
		t.Errorf("a: got\n%s\nwant\n%s", got, want)
	}
	got = MustExec(t, b, time.Minute, `ping -c 1 -W 10 10.0.0.1 >/dev/null && echo reachable; ip neigh show 10.0.0.1 | cut -d" " -f1-5; echo result > "$`+OutEnv+`/r"`)
	want = "reachable\n10.0.0.1 dev eth0 lladdr 02:75:6d:01:00:00\n"
	if got != want {
		t.Errorf("b: got\n%s\nwant\n%s", got, want)
	}
	if r, err := os.ReadFile(filepath.Join(b.OutDir(), "r")); err != nil || string(r) != "result\n" {
		t.Errorf("b's output directory: %q, %v; want \"result\\n\"", r, err)
	}
	// A script's exit status and its timeout come back as the guest saw them.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if out, code, err := a.Exec(ctx, "echo x; exit 7"); err != nil || out != "x\n" || code != 7 {
		t.Errorf("Exec exit 7: %q, %d, %v", out, code, err)
	}
	if out, code, err := a.Exec(ctx, "sleep 60"); err != nil || code != 124 || !strings.HasPrefix(out, "uml agent: killed after ") {
		t.Errorf("Exec past its deadline: %q, %d, %v; want 124", out, code, err)
	}
	// A killed kernel answers no more.
	a.Kill()
	if _, _, err := a.Exec(t.Context(), "true"); err == nil || !strings.HasPrefix(err.Error(), "uml: a is not running: ") {
		t.Errorf("Exec on a killed machine: %v", err)
	}
}

func TestBootErrors(t *testing.T) {
	sw, err := StartSwitch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	if _, err := sw.Boot(t.Context(), Node{Name: "x", ID: 0}); err == nil || err.Error() != "uml: machine x: ID 0 is not in 1-255" {
		t.Errorf("Boot with ID 0: %v", err)
	}
	// A "kernel" that exits at once fails Boot with the reason, never hangs it.
	_, err = sw.Boot(t.Context(), Node{Name: "x", ID: 1, Options: Options{Kernel: "/bin/false", Timeout: time.Minute}})
	const want = "uml: machine x did not start: uml: the kernel did not boot or did not run the command (kernel: exit status 1)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Boot of a kernel that exits: %v, want %q...", err, want)
	}
	if err := sw.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(sw.Socket); !os.IsNotExist(err) {
		t.Errorf("the switch's socket is left after Close: %v", err)
	}
}
