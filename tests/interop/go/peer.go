// Interop peer for asyncrpc: Go's net/rpc with ugorji's msgpack-rpc codec (codec.MsgpackSpecRpc).
//
//	peer serve                 listen on 127.0.0.1:0, print "LISTENING <port>", serve until stdin closes
//	peer client HOST PORT [CHECK...]
//	                           call an asyncrpc server; one JSON line per check: {"check","ok","detail"}
//
// net/rpc's rules shape the server side: a method is "Peer.Name", takes ONE argument (the codec
// decodes only the first element of params), and net/rpc's server reads requests only (a
// notification is not a 4-element array: the codec fails and the connection is closed).
// The client side cannot send notifications at all, and sees an error only as a string.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ugorji/go/codec"
)

// WriteExt: the new msgpack spec, str and bin are distinct (str -> string, bin -> []byte).
// (RawToString would turn bin into string too.)
func handle() *codec.MsgpackHandle { return &codec.MsgpackHandle{WriteExt: true} }

type Peer struct {
	mu    sync.Mutex
	notes []interface{}
}

func (p *Peer) Echo(x interface{}, reply *interface{}) error { *reply = x; return nil }

// Add and DelayedEcho take their arguments as one array: net/rpc's one-argument rule.
func (p *Peer) Add(ab []int64, reply *int64) error {
	if len(ab) != 2 {
		return fmt.Errorf("add takes [a, b], got %v", ab)
	}
	*reply = ab[0] + ab[1]
	return nil
}

// Exported: net/rpc ignores methods whose argument type is not.
type Delayed struct {
	_struct bool `codec:",toarray"` // decoded from [ms, x]
	Ms      int64
	X       interface{}
}

// Each request runs in its own goroutine (net/rpc), so replies come back out of order.
func (p *Peer) DelayedEcho(args Delayed, reply *interface{}) error {
	time.Sleep(time.Duration(args.Ms) * time.Millisecond)
	*reply = args.X
	return nil
}

func (p *Peer) Fail(message string, reply *interface{}) error { return errors.New(message) }

// Note is reachable as a request only (see the top of the file).
func (p *Peer) Note(x interface{}, reply *interface{}) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, x)
	return nil
}

func (p *Peer) Notes(_ interface{}, reply *[]interface{}) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	*reply = append([]interface{}{}, p.notes...)
	return nil
}

func serve() {
	server := rpc.NewServer()
	if err := server.Register(&Peer{}); err != nil {
		panic(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("LISTENING %d\n", listener.Addr().(*net.TCPAddr).Port)
	go func() { // the test closes our stdin (or dies): exit then, never linger
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		conn, err := listener.Accept()
		if err != nil {
			panic(err)
		}
		go server.ServeCodec(codec.MsgpackSpecRpc.ServerCodec(conn, handle()))
	}
}

type report struct {
	Check  string `json:"check"`
	Ok     bool   `json:"ok"`
	Detail string `json:"detail"`
}

var out = json.NewEncoder(os.Stdout)

func emit(check string, ok bool, detail string) {
	_ = out.Encode(report{check, ok, detail})
}

// echo round-trips one value and reports whether it came back equal, type included.
func echo(c *rpc.Client, check string, x interface{}) {
	var reply interface{}
	if err := c.Call("echo", x, &reply); err != nil {
		emit(check, false, err.Error())
		return
	}
	emit(check, reflect.DeepEqual(reply, x), fmt.Sprintf("%T", reply))
}

var checks = map[string]func(c *rpc.Client){
	"one_call": func(c *rpc.Client) {
		var sum int64
		err := c.Call("add", codec.MsgpackSpecRpcMultiArgs{40, 2}, &sum)
		emit("one_call", err == nil && sum == 42, fmt.Sprint(sum, err))
	},
	"concurrent": func(c *rpc.Client) {
		// 100 calls at once, the first with the longest delay (battery.py's delay_ms): the server
		// answers out of order and each reply must reach its own caller. done: the order of arrival.
		const n = 100
		calls := make([]*rpc.Call, n)
		done := make(chan int, n)
		for i := 0; i < n; i++ {
			var reply int64
			calls[i] = c.Go("delayed_echo", codec.MsgpackSpecRpcMultiArgs{3 * (n - i), i}, &reply, nil)
			go func(i int) { <-calls[i].Done; done <- i }(i)
		}
		order := make([]int, 0, n)
		ok := true
		for len(order) < n {
			i := <-done
			order = append(order, i)
			call := calls[i]
			if call.Error != nil || *call.Reply.(*int64) != int64(i) {
				ok = false
			}
		}
		emit("concurrent", ok, fmt.Sprint(order))
	},
	"handler_error": func(c *rpc.Client) {
		var reply interface{}
		err := c.Call("fail", "boom", &reply)
		_, isServerError := err.(rpc.ServerError)
		emit("handler_error", isServerError, fmt.Sprint(err))
	},
	"unknown_method": func(c *rpc.Client) {
		var reply interface{}
		err := c.Call("no_such_method", codec.MsgpackSpecRpcMultiArgs{}, &reply)
		_, isServerError := err.(rpc.ServerError)
		emit("unknown_method", isServerError, fmt.Sprint(err))
	},
	"bin_and_str": func(c *rpc.Client) {
		echo(c, "bin_and_str:bin", []byte{0, 1, 0xfe, 0xff})
		echo(c, "bin_and_str:str", "text")
	},
	"large": func(c *rpc.Client) {
		echo(c, "large:str", strings.Repeat("0123456789abcdef", 1<<16)) // 1 MiB
		echo(c, "large:bin", bytes.Repeat([]byte{0, 0x80, 0xff, 7}, 1<<18))
	},
	"unicode": func(c *rpc.Client) {
		echo(c, "unicode", "emoji \U0001F600 combining e\u0301 CJK \u6f22 nul \x00")
	},
	"int64": func(c *rpc.Client) {
		// Decoded into interface{}, the codec gives int64 for negatives, uint64 otherwise.
		echo(c, "int64:min", int64(-1<<63))
		echo(c, "int64:max", uint64(1<<63-1))
		echo(c, "int64:uint64_max", uint64(1<<64-1))
	},
}

func client(host, port string, names []string) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
	if err != nil {
		panic(err)
	}
	c := rpc.NewClientWithCodec(codec.MsgpackSpecRpc.ClientCodec(conn, handle()))
	if len(names) == 0 {
		for name := range checks {
			names = append(names, name)
		}
	}
	for _, name := range names {
		check, known := checks[name]
		if !known {
			emit(name, false, "no such check")
			continue
		}
		check(c)
	}
	_ = c.Close()
}

func main() {
	switch {
	case len(os.Args) == 2 && os.Args[1] == "serve":
		serve()
	case len(os.Args) >= 4 && os.Args[1] == "client":
		client(os.Args[2], os.Args[3], os.Args[4:])
	default:
		fmt.Fprintln(os.Stderr, "usage: peer serve | peer client HOST PORT [CHECK...]")
		os.Exit(2)
	}
}
