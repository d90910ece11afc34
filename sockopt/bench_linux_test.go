package sockopt_test

func supportsTypical() bool { return true }
