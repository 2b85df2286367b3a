package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// benchForwardLoad prints the time and the client's peak RSS for conns
// concurrent connections through `-N -L`, each carrying kib KiB to an echo
// server and back (checked), for ssh and rssh in turn.
func benchForwardLoad(clients []struct {
	name string
	argv []string
}, conns, kib int) error {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	payload := make([]byte, kib<<10)
	rand.Read(payload)
	wall, rss := map[string]string{}, map[string]string{}
	var ratio [2]float64 // wall, rss: rssh/ssh when both ran
	var w, r [2]float64
	for i, c := range clients {
		d, kb, err := forwardLoad(c.argv, echo.Addr().(*net.TCPAddr).Port, conns, payload)
		if err != nil {
			// A figure, not a gate: say what failed and go on.
			fmt.Printf("%s -L load failed: %v\n", c.name, err)
			wall[c.name], rss[c.name] = "failed", "failed"
			continue
		}
		wall[c.name], rss[c.name] = ms(d), fmt.Sprintf("%.1f MB", float64(kb)/1024)
		w[i], r[i] = float64(d), float64(kb)
	}
	if w[0] > 0 && w[1] > 0 {
		ratio = [2]float64{w[1] / w[0], r[1] / r[0]}
	}
	fmt.Printf("%-34s %10s %10s %8.2f %s\n", fmt.Sprintf("-L: %d conns x %d KiB, wall", conns, kib),
		wall["ssh"], wall["rssh"], ratio[0], "")
	fmt.Printf("%-34s %10s %10s %8.2f %s\n", fmt.Sprintf("-L: %d conns, client peak RSS", conns),
		rss["ssh"], rss["rssh"], ratio[1], "")
	return nil
}

// forwardLoad starts argv with `-N -L PORT:127.0.0.1:echoPort bench`, runs
// n connections at once through PORT, each sending payload and wanting it
// back intact, and returns the wall time of the connections and the
// client's peak RSS in KiB.
func forwardLoad(argv []string, echoPort, n int, payload []byte) (time.Duration, int64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	full := append(append([]string{}, argv...), "-N", "-L", fmt.Sprintf("%d:127.0.0.1:%d", port, echoPort), "bench")
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			return 0, 0, fmt.Errorf("exited: %s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%s not listening after 15 s", addr)
		}
	}

	start := time.Now()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(addr, payload)
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return 0, 0, fmt.Errorf("%d of %d connections failed, first: %v", failed, n, first)
	}
	return d, vmHWM(cmd.Process.Pid), nil
}

// echoOnce sends payload through addr, half-closes, and wants it back.
func echoOnce(addr string, payload []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	// Compared as it arrives: 500 copies of the payload held at once
	// would be the bench's memory, not the client's.
	buf := make([]byte, 32<<10)
	off := 0
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if off+k > len(payload) || !bytes.Equal(buf[:k], payload[off:off+k]) {
				return errors.New("the bytes that came back differ from those sent")
			}
			off += k
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := <-werr; err != nil {
		return err
	}
	if off != len(payload) {
		return fmt.Errorf("%d bytes came back, want %d", off, len(payload))
	}
	return nil
}
