package queue

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The fence: the node that holds a prefix is the only writer of its stream, so it
// knows the stream's last sequence after each of its commits, and every commit
// expects it (Nats-Expected-Last-Sequence, on a single message or on the first of
// a batch). A node taking the prefix over first claims the stream: it writes its
// name on the fence subject, expecting the last sequence it read, and loads the
// queue only then. From that moment every commit of the previous holder (a process
// that was frozen, or cut off, past its lock's expiry) is refused by the stream
// itself, with no extra message per commit. The lock (jetstream_lock.go) says who
// should hold the prefix; the fence makes sure nobody else writes.

// claimTries bounds the claim: it fails only while another node keeps committing,
// and that node's commits fail once the claim lands.
const claimTries = 50

func (kv *jsKV) fenceSubject() string { return kv.subj + ".fence" }

// claim makes this node the stream's only writer (see above).
func (kv *jsKV) claim(who []byte) error {
	kv.who = who
	kv.idPrefix = nats.NewInbox()[len(nats.InboxPrefix):] + "."
	var err error
	for range claimTries {
		if err = kv.claimOnce(); err == nil || !wrongLastSeq(err) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("queue: claim jetstream stream %s: %w", kv.name, err)
}

func (kv *jsKV) claimOnce() error {
	last, err := kv.lastSeq()
	if err != nil {
		return err
	}
	ctx, cancel := kv.ctx()
	defer cancel()
	m := nats.NewMsg(kv.fenceSubject())
	m.Data = kv.who
	ack, err := kv.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequence(last))
	if err != nil {
		return fmt.Errorf("queue: claim jetstream stream %s: %w", kv.name, err)
	}
	kv.last = ack.Sequence
	return nil
}

func (kv *jsKV) lastSeq() (uint64, error) {
	ctx, cancel := kv.ctx()
	defer cancel()
	info, err := kv.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue: jetstream stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// expect puts the fence on m, the first message of a commit.
func (kv *jsKV) expect(m *nats.Msg) {
	m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(kv.last, 10))
}

// refused handles a commit the stream refused for its expected last sequence. If
// the fence still names this node, an earlier commit whose outcome was unknown
// (a timeout) did land and moved the sequence: resynchronise (nil: send again).
// Otherwise another node claimed the stream: ErrLocked, for good.
func (kv *jsKV) refused(err error) error {
	ctx, cancel := kv.ctx()
	defer cancel()
	m, gerr := kv.stream.GetLastMsgForSubject(ctx, kv.fenceSubject())
	if gerr != nil {
		return fmt.Errorf("queue: jetstream commit refused (%v), fence unreadable: %w", err, gerr)
	}
	if !bytes.Equal(m.Data, kv.who) {
		lost := fmt.Errorf("%w: another node claimed jetstream stream %s (%s)", ErrLocked, kv.name, m.Data)
		kv.lock.lose(lost)
		return lost
	}
	return kv.resync()
}

// resync takes the stream's last sequence as this node's: nobody else writes.
func (kv *jsKV) resync() error {
	last, err := kv.lastSeq()
	if err != nil {
		return err
	}
	kv.last = last
	return nil
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}
