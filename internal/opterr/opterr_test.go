package opterr_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nettune/nettune/internal/opterr"
)

type opt string

func (o opt) String() string { return string(o) }

func TestMessageNamesTheOptionTheCauseAndTheConflicts(t *testing.T) {
	cause := errors.New("what is wrong")
	assert.Equal(t, "pkg.A(1): what is wrong", opterr.Message("pkg", opt("pkg.A(1)"), false, nil, cause))
	assert.Equal(t, "pkg.A(1): what is wrong (conflicts with pkg.B(2), pkg.C(3))",
		opterr.Message("pkg", opt("pkg.A(1)"), false, []opt{"pkg.B(2)", "pkg.C(3)"}, cause))
	assert.Equal(t, "pkg: what is wrong", opterr.Message("pkg", opt(""), true, nil, cause), "no option: the package prefix")
	assert.Equal(t, "", opterr.List[opt](nil))
}
