// Measures HashiCorp memberlist (DefaultLANConfig) the way
// shared/reference/memberlist-bench.md describes, so that the hepto gossip
// bench can print ratios against figures taken on the same machine, in the
// same invocation: N members in this one process on 127.0.0.1, every member
// joining through member 0 only, fresh clusters, crash = Shutdown() with no
// leave, leave = Leave() then Shutdown().
//
// Build offline in GOPATH mode against Debian's packaged sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o memberlist-bench .
//
// Prints one JSON object per cluster run on stdout; progress on stderr.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

type result struct {
	Impl              string  `json:"impl"`
	Encrypted         bool    `json:"encrypted"`
	N                 int     `json:"n"`
	Run               int     `json:"run"`
	JoinMs            float64 `json:"joinMs"`
	CrashFirstMs      float64 `json:"crashFirstMs"`
	CrashAllMs        float64 `json:"crashAllMs"`
	LeaveAllMs        float64 `json:"leaveAllMs"`
	BytesPerSecMember float64 `json:"bytesPerSecPerMember"`
	MemPerMemberKiB   float64 `json:"memPerMemberKiB"`
	HeapPerMemberKiB  float64 `json:"heapPerMemberKiB"`
	FalseDeaths       int     `json:"falseDeaths"`
	Error             string  `json:"error,omitempty"`
}

// events records, per observing member, when it first saw each name join and
// when it last saw each name go (memberlist reports dead and left alike).
type events struct {
	mu     sync.Mutex
	joined map[string]time.Time
	gone   map[string]time.Time
	goneN  map[string]int
}

func newEvents() *events {
	return &events{joined: map[string]time.Time{}, gone: map[string]time.Time{}, goneN: map[string]int{}}
}

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.mu.Lock()
	if _, ok := e.joined[n.Name]; !ok {
		e.joined[n.Name] = time.Now()
	}
	e.mu.Unlock()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	e.mu.Lock()
	e.gone[n.Name] = time.Now()
	e.goneN[n.Name]++
	e.mu.Unlock()
}

func (e *events) NotifyUpdate(*memberlist.Node) {}

func (e *events) joinedCount() (int, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var last time.Time
	for _, t := range e.joined {
		if t.After(last) {
			last = t
		}
	}
	return len(e.joined), last
}

func (e *events) goneSince(name string, since time.Time) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.gone[name]
	return t, ok && !t.Before(since)
}

// countingTransport wraps the real NetTransport and counts every byte this
// member sends, over UDP and over TCP streams in both directions of dial.
type countingTransport struct {
	*memberlist.NetTransport
	sent   *int64
	stream chan net.Conn
}

type countingConn struct {
	net.Conn
	sent *int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	atomic.AddInt64(c.sent, int64(n))
	return n, err
}

func newCountingTransport(nt *memberlist.NetTransport) *countingTransport {
	t := &countingTransport{NetTransport: nt, sent: new(int64), stream: make(chan net.Conn)}
	go func() {
		for c := range nt.StreamCh() {
			t.stream <- countingConn{Conn: c, sent: t.sent}
		}
	}()
	return t
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	atomic.AddInt64(t.sent, int64(len(b)))
	return t.NetTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	atomic.AddInt64(t.sent, int64(len(b)))
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, sent: t.sent}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, sent: t.sent}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.stream }

type member struct {
	name string
	list *memberlist.Memberlist
	ev   *events
	tr   *countingTransport
	addr string
}

func rssKiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[1], 64)
			return v
		}
	}
	return 0
}

func newMember(i int, key []byte) (*member, error) {
	name := fmt.Sprintf("m%03d", i)
	ev := newEvents()
	quiet := log.New(io.Discard, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: quiet})
	if err != nil {
		return nil, err
	}
	tr := newCountingTransport(nt)
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = name
	cfg.BindAddr = "127.0.0.1"
	cfg.Transport = tr
	cfg.Events = ev
	cfg.Logger = quiet
	cfg.LogOutput = nil
	cfg.SecretKey = key
	list, err := memberlist.Create(cfg)
	if err != nil {
		_ = nt.Shutdown()
		return nil, err
	}
	return &member{name: name, list: list, ev: ev, tr: tr, addr: fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())}, nil
}

// heapKiB is what the Go runtime holds for live objects and goroutine stacks, after a GC.
func heapKiB() float64 {
	runtime.GC()
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	return float64(st.HeapInuse+st.StackInuse) / 1024
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// waitUntil polls cond every 5 ms until it holds or the deadline passes.
func waitUntil(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func runOnce(n, run int, key []byte, rest, settle, timeout time.Duration) (res result) {
	res = result{Impl: "memberlist", Encrypted: key != nil, N: n, Run: run}
	rssBefore := rssKiB()
	heapBefore := heapKiB()
	members := make([]*member, 0, n)
	defer func() {
		for _, m := range members {
			_ = m.list.Shutdown()
		}
	}()
	for i := 0; i < n; i++ {
		m, err := newMember(i, key)
		if err != nil {
			res.Error = "create: " + err.Error()
			return
		}
		members = append(members, m)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var joinErrs int64
	for _, m := range members[1:] {
		wg.Add(1)
		go func(m *member) {
			defer wg.Done()
			// An agent retries its joins; so does this bench (the anchor refuses >128 in flight).
			for attempt := 0; attempt < 5; attempt++ {
				if _, err := m.list.Join([]string{members[0].addr}); err == nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			atomic.AddInt64(&joinErrs, 1)
		}(m)
	}
	converged := waitUntil(timeout, func() bool {
		for _, m := range members {
			if c, _ := m.ev.joinedCount(); c < n {
				return false
			}
		}
		return true
	})
	wg.Wait()
	if !converged {
		res.Error = fmt.Sprintf("no convergence within %s (%d joins failed)", timeout, joinErrs)
		return
	}
	var last time.Time
	for _, m := range members {
		if _, t := m.ev.joinedCount(); t.After(last) {
			last = t
		}
	}
	res.JoinMs = ms(last.Sub(start))
	res.MemPerMemberKiB = (rssKiB() - rssBefore) / float64(n)
	res.HeapPerMemberKiB = (heapKiB() - heapBefore) / float64(n)

	time.Sleep(settle)
	var before int64
	for _, m := range members {
		before += atomic.LoadInt64(m.tr.sent)
	}
	restStart := time.Now()
	time.Sleep(rest)
	var after int64
	for _, m := range members {
		after += atomic.LoadInt64(m.tr.sent)
	}
	res.BytesPerSecMember = float64(after-before) / time.Since(restStart).Seconds() / float64(n)

	victim := 1 + rand.Intn(n-1)
	leaver := 1 + rand.Intn(n-1)
	for leaver == victim && n > 2 {
		leaver = 1 + rand.Intn(n-1)
	}
	crashAt := time.Now()
	_ = members[victim].list.Shutdown()
	first, all, ok := waitGone(members, victim, -1, crashAt, timeout)
	if !ok {
		res.Error = "crash not seen by all within " + timeout.String()
		return
	}
	res.CrashFirstMs, res.CrashAllMs = ms(first.Sub(crashAt)), ms(all.Sub(crashAt))

	leaveAt := time.Now()
	_ = members[leaver].list.Leave(5 * time.Second)
	_ = members[leaver].list.Shutdown()
	_, all, ok = waitGone(members, leaver, victim, leaveAt, timeout)
	if !ok {
		res.Error = "leave not seen by all within " + timeout.String()
		return
	}
	res.LeaveAllMs = ms(all.Sub(leaveAt))
	for i, m := range members {
		m.ev.mu.Lock()
		for name, c := range m.ev.goneN {
			if name != members[victim].name && name != members[leaver].name && i != victim && i != leaver {
				res.FalseDeaths += c
			}
		}
		m.ev.mu.Unlock()
	}
	return
}

// waitGone waits until every member but `who` (and `skip`) saw `who` go after `since`.
func waitGone(members []*member, who, skip int, since time.Time, timeout time.Duration) (first, all time.Time, ok bool) {
	name := members[who].name
	ok = waitUntil(timeout, func() bool {
		for i, m := range members {
			if i == who || i == skip {
				continue
			}
			if _, seen := m.ev.goneSince(name, since); !seen {
				return false
			}
		}
		return true
	})
	if !ok {
		return
	}
	for i, m := range members {
		if i == who || i == skip {
			continue
		}
		t, _ := m.ev.goneSince(name, since)
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(all) {
			all = t
		}
	}
	return
}

func main() {
	sizes := flag.String("n", "10,50,100", "cluster sizes, comma-separated")
	runs := flag.Int("runs", 3, "fresh clusters per size")
	enc := flag.Bool("enc", true, "encrypt with a 32-byte key (AES-256-GCM)")
	rest := flag.Duration("rest", 20*time.Second, "traffic window at rest")
	settle := flag.Duration("settle", 5*time.Second, "pause between convergence and the traffic window")
	timeout := flag.Duration("timeout", 120*time.Second, "give up on one phase after this long")
	flag.Parse()
	var key []byte
	if *enc {
		key = []byte("hepto-bench-memberlist-key-32by!")
	}
	out := json.NewEncoder(os.Stdout)
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			fmt.Fprintf(os.Stderr, "bad size %q: need an integer >= 3\n", s)
			os.Exit(2)
		}
		for r := 1; r <= *runs; r++ {
			fmt.Fprintf(os.Stderr, "memberlist N=%d run %d/%d\n", n, r, *runs)
			res := runOnce(n, r, key, *rest, *settle, *timeout)
			if err := out.Encode(res); err != nil {
				os.Exit(1)
			}
			time.Sleep(time.Second)
		}
	}
}
