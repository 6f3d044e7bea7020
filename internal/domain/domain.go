// Package domain holds trialsd's words: what a trial is, the states it moves
// through, the events of its history, who causes a change, what a trial
// request describes, and the one rule each for an e-mail address and a
// plan's state. It is a leaf: store, wire, outbox, lifecycle, signup and
// httpapi all import it, and it imports none of them, so a reader finds what
// a trial is here without reading SQL.
package domain
