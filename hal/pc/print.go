package pc

import "github.com/anykernel/anykernel/compat/linux"

// line builds one line of kernel output without allocating; the platform
// shares compat/linux's formatter.
type line = linux.Line
