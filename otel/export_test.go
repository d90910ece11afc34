package nettuneotel

// Fit is fit.
var Fit = fit
