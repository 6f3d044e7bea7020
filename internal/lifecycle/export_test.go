package lifecycle

import "time"

// OnFollowWait has f hear each wait of s's following expiry job.
func OnFollowWait(s *Service, f func(due time.Time)) { s.follow.waiting = f }
