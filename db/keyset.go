package db

import "time"

// KeysetOrigin is where every list's keyset walk starts: the first page asks
// for rows whose (created_at, id) is greater than (KeysetOrigin, the nil
// UUID) (queries/*.sql, the *List statements). A row dated at or before it
// would be stored but never listed, so nothing may write such a timestamp
// (lifecycle's import checks every one).
var KeysetOrigin = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
