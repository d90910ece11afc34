package nettuneotel

// NanosecondExport reports whether latency still exports nanoseconds.
var NanosecondExport = nanosecondExport

// Fit is fit.
var Fit = fit
