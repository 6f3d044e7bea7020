package daemon

import (
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/trialsd/trialsd/internal/metrics"
	"github.com/trialsd/trialsd/internal/services"
)

// The end-to-end tests reach into what the daemon wired, to seed data, wait
// on River's events and refresh gauges; its users see none of it.

func (d *Daemon) River() *river.Client[pgx.Tx] { return d.river }

func (d *Daemon) Services() *services.Services { return d.services }

func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }
