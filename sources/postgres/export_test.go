package postgres

// DSN returns the connection URL the source would use (sslmode defaulted).
func DSN(o *Options) (string, error) {
	c, err := o.resolve()
	if err != nil {
		return "", err
	}
	return c.dsn, nil
}
