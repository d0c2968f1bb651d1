package aac

// SetExchangeHooks installs hooks around c's token exchanges. after
// returning true makes the rotation stop right after the token endpoint
// answered, with nothing stored and the lease kept, as if the process had
// died there. Either may be nil.
func SetExchangeHooks(c *Client, before func(), after func() (crash bool)) {
	c.tokens.beforeExchange, c.tokens.afterExchange = before, after
}
