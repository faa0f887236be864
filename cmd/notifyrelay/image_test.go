package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// No image registry is reachable here, so the container image cannot be built;
// TestImageContents checks what goes into it instead: the Dockerfile's own build
// command makes a static binary, and that binary, started with the ENTRYPOINT's
// arguments on a fresh data directory, becomes ready and stops cleanly.
func TestImageContents(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	build, entrypoint := readDockerfile(t, "../../Dockerfile")
	bin := filepath.Join(t.TempDir(), "notifyrelay")
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(build, "/out/notifyrelay", bin))
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "VERSION=image-test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	checkStatic(t, bin)
	addr := freeAddr(t)
	args := substitute(entrypoint[1:], map[string]string{"/data": t.TempDir(), "0.0.0.0:8080": addr})
	runUntilReady(t, bin, args, addr)
}

// readDockerfile returns the build stage's go build command and the ENTRYPOINT.
func readDockerfile(t *testing.T, path string) (string, []string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var build string
	var entrypoint []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "RUN "); ok && strings.Contains(rest, "go build") {
			build = rest
		}
		if rest, ok := strings.CutPrefix(line, "ENTRYPOINT "); ok {
			if err := json.Unmarshal([]byte(rest), &entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		}
	}
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "/out/notifyrelay") || len(entrypoint) < 2 {
		t.Fatalf("Dockerfile: build %q, entrypoint %q", build, entrypoint)
	}
	return build, entrypoint
}

// checkStatic: no program interpreter and no shared libraries, so the binary runs
// on distroless/static.
func checkStatic(t *testing.T, bin string) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("not static: program header %s", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("not static: needs %v", libs)
	}
}

// substitute replaces whole arguments: the image's /data volume by a temp dir,
// its 0.0.0.0:8080 by a loopback address (tests reach 127.0.0.1 only).
func substitute(args []string, with map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if r, ok := with[a]; ok {
			out[i] = r
		}
	}
	return out
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runUntilReady starts bin, waits for /readyz 200, then stops it with SIGTERM and
// expects exit status 0.
func runUntilReady(t *testing.T, bin string, args []string, addr string) {
	p := exec.Command(bin, args...)
	var log strings.Builder
	p.Stderr, p.Stdout = &log, &log
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = p.Process.Kill()
			<-exited
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v: not ready after 30s\n%s", bin, args, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", log.String())
	}
}
