// Command go-receiver is a minimal notifyrelay channel client: it creates (or
// reuses) a notification channel, prints its callbackURL (subscribe with it as
// notifyURL), then prints every notification, one per line, in order, at least
// once across disconnects and restarts. It keeps the channel and the last seq it
// printed in a state file, so a restarted receiver resumes where it stopped.
//
//	go run ./examples/go-receiver -url http://127.0.0.1:8080 -token alice-token -state alice.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"notifyrelay/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "go-receiver:", err)
		os.Exit(1)
	}
}

// state is what the receiver keeps between runs.
type state struct {
	Channel client.Channel `json:"channel"`
	LastSeq uint64         `json:"lastSeq"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("go-receiver", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "notifyrelay's public_url (plus base_path)")
	token := fs.String("token", "", "bearer token (none when the server has authentication off)")
	user := fs.String("user", "", "userId of the channel (default: the token's user)")
	path := fs.String("state", "receiver-state.json", "file keeping the channel and the last seq handled")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := client.New(client.Options{BaseURL: *base, Token: *token})
	st, err := channel(ctx, c, *user, *path)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "callbackURL", st.Channel.CallbackURL)
	return c.Receive(ctx, st.Channel, client.ReceiveOptions{
		LastSeq: st.LastSeq,
		Handler: func(_ context.Context, n client.Notification) error {
			fmt.Fprintf(out, "%d %s %s\n", n.Seq, n.Root, n.Body)
			st.LastSeq = n.Seq
			return save(*path, st) // acknowledged once it is saved
		},
		OnGap: func(g client.Gap) { fmt.Fprintf(out, "gap %d-%d\n", g.From, g.To) },
	})
}

// channel reads the state file, or creates a channel when there is none (or
// the one it names is gone).
func channel(ctx context.Context, c *client.Client, user, path string) (state, error) {
	var st state
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
		if _, err := c.GetChannel(ctx, st.Channel.ResourceURL); err == nil {
			return st, nil
		} else if !errors.Is(err, client.ErrChannelGone) {
			return st, err
		}
	}
	ch, err := c.CreateChannel(ctx, client.ChannelSpec{User: user})
	if err != nil {
		return st, err
	}
	st = state{Channel: ch}
	return st, save(path, st)
}

func save(path string, st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
