package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/domain"
)

// trialColumns are the trial columns the domain's Trial holds, in its
// order: the search is built by hand (its shape depends on the filters
// asked for, which sqlc's fixed queries cannot express), so it names them
// itself.
const trialColumns = `id, user_id, organization_id, self_service, created_at, expiration_date,
	notes, expired_date, deleted_date, upgraded_date, grace_ends_at, schedule_gen, state,
	transition_job_id, reminder_job_ids, test_clock_id`

// SearchTrials returns a page of trials matching s, by expiration date and
// id. The matching trials are found first, through the unique indexes of
// users (lower(email), lower(username)), organizations_name_lower_idx and
// the trial's primary key, so a search reads the few trials it finds; an
// unsearched page walks trials_expiration_id_idx (or, for a state,
// trials_state_expiration_idx) from the key on. The SQL is built with only
// the conditions asked for, so each shape gets its own plan.
func (q *Queries) SearchTrials(ctx context.Context, s domain.TrialSearch) ([]domain.TrialListing, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if s.State != "" {
		where = append(where, "state = "+arg(string(s.State)))
	}
	if s.After != nil {
		where = append(where, fmt.Sprintf("(expiration_date, id) > (%s, %s)", arg(s.After.ExpirationDate), arg(s.After.ID)))
	}
	if s.Query != "" {
		where = append(where, matching(s.Query, arg))
	}
	cond := ""
	if len(where) > 0 {
		cond = "WHERE " + strings.Join(where, " AND ")
	}
	sql := `WITH page AS (
			SELECT ` + trialColumns + ` FROM trials ` + cond + `
			ORDER BY expiration_date, id LIMIT ` + arg(s.Limit) + `)
		SELECT page.*, u.username, u.email, o.name
		FROM page JOIN users u ON u.id = page.user_id JOIN organizations o ON o.id = page.organization_id
		ORDER BY page.expiration_date, page.id`
	rows, err := q.db.Query(ctx, sql, args...)
	return collect(rows, err, "searching trials", func(row pgx.CollectableRow) (domain.TrialListing, error) {
		var l domain.TrialListing
		t := &l.Trial
		err := row.Scan(&t.ID, &t.UserID, &t.OrganizationID, &t.SelfService, &t.CreatedAt, &t.ExpirationDate,
			&t.Notes, &t.ExpiredDate, &t.DeletedDate, &t.UpgradedDate, &t.GraceEndsAt, &t.ScheduleGen, &t.State,
			&t.TransitionJobID, &t.ReminderJobIDs, &t.TestClockID, &l.Username, &l.UserEmail, &l.OrganizationName)
		return l, err
	})
}

// matching is the condition of the trials a search query names: one
// IN over a union of index probes, which the planner runs as a semi-join
// from the few ids found (an OR of subqueries would filter every row).
func matching(query string, arg func(any) string) string {
	p := arg(query)
	probes := []string{
		`SELECT t.id FROM trials t JOIN users u ON u.id = t.user_id WHERE lower(u.email) = lower(` + p + `) OR lower(u.username) = lower(` + p + `)`,
		`SELECT t.id FROM trials t JOIN organizations o ON o.id = t.organization_id WHERE lower(o.name) = lower(` + p + `)`,
	}
	if id, err := strconv.ParseInt(strings.TrimSpace(query), 10, 64); err == nil {
		probes = append(probes, `SELECT `+arg(id)+`::bigint`)
	}
	return "id IN (" + strings.Join(probes, " UNION ALL ") + ")"
}

// PurgedTrials returns a page of purged trials by purge date and id (the
// key's ExpirationDate holds the purge date), from their trial.purged
// events through trial_events_purged_idx (00012); id, when not nil, narrows
// them to that trial.
func (q *Queries) PurgedTrials(ctx context.Context, id *int64, after *domain.TrialKey, limit int) ([]domain.PurgedTrial, error) {
	var from domain.TrialKey
	if after != nil {
		from = *after
	}
	rows, err := q.db.Query(ctx, `
		SELECT trial_id, at, (data->>'organizationId')::bigint, data->>'state'
		FROM trial_events
		WHERE kind = $1 AND (at, trial_id) > ($2, $3) AND ($4::bigint IS NULL OR trial_id = $4)
		ORDER BY at, trial_id LIMIT $5`, domain.EventPurged, from.ExpirationDate, from.ID, id, limit)
	return collect(rows, err, "listing purged trials", func(row pgx.CollectableRow) (domain.PurgedTrial, error) {
		var p domain.PurgedTrial
		err := row.Scan(&p.ID, &p.PurgedAt, &p.OrganizationID, &p.State)
		return p, err
	})
}
