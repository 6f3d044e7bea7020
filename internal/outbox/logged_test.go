package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/outbox"
	"github.com/trialsd/trialsd/internal/store"
)

// An e-mail the log sender took is done with, but reported as logged, not
// delivered: nobody received it, and the deliveries counter says so.
func TestLogSenderReportsLoggedNotDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	d := outbox.NewDeliverer(outbox.DelivererDeps{
		Pool: b.pool, Clock: b.clock, Writer: b.outbox, Config: b.cfg, Logger: slog.New(slog.DiscardHandler),
		Mail: outbox.LogSender{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
	})
	err := store.InTx(ctx, b.pool, func(tx pgx.Tx) error {
		return b.outbox.EnqueueEmail(ctx, tx, "activation:1:1", outbox.Email{To: "fred@acme.example", Subject: "code", Body: "123456"}, b.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	jobs := b.jobs(t)
	if len(jobs) != 1 {
		t.Fatalf("%d delivery jobs, want 1", len(jobs))
	}
	job := outbox.Delivery{OutboxID: jobs[0].args.OutboxID}
	channel, outcome, err := d.Deliver(ctx, job)
	if err != nil || channel != store.ChannelEmail || outcome != outbox.Logged {
		t.Fatalf("Deliver = %s %s, %v; want an e-mail logged", channel, outcome, err)
	}
	if _, outcome, _ := d.Deliver(ctx, job); outcome != outbox.Skipped {
		t.Errorf("a second attempt = %s, want skipped: a logged e-mail is done with", outcome)
	}
}
