// Package man holds portknock's manual pages, portknockd(8), portknock(1)
// and portknockd.toml(5), as mdoc(7) source files beside this one. It has
// no code: its tests render each page and fail on any formatter warning,
// and keep the pages in step with the programs' options and the reference
// configuration's keys.
package man
