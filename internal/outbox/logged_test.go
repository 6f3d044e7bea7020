package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
	d := outbox.NewDeliverer(b.pool, http.DefaultClient, secret, b.clock, b.outbox,
		outbox.LogSender{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	err := store.InTx(ctx, b.pool, func(tx pgx.Tx) error {
		return b.outbox.EnqueueEmail(ctx, tx, "activation:1:1", outbox.Email{To: "fred@acme.example", Subject: "code", Body: "123456"}, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := b.deliveryJobs(t)
	if len(ids) != 1 {
		t.Fatalf("%d delivery jobs, want 1", len(ids))
	}
	channel, outcome, err := d.Deliver(ctx, ids[0], false)
	if err != nil || channel != store.ChannelEmail || outcome != outbox.Logged {
		t.Fatalf("Deliver = %s %s, %v; want an e-mail logged", channel, outcome, err)
	}
	if _, outcome, _ := d.Deliver(ctx, ids[0], false); outcome != outbox.Skipped {
		t.Errorf("a second attempt = %s, want skipped: a logged e-mail is done with", outcome)
	}
}
