package salesforcesink

import (
	"context"
	"errors"
	"net/http"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// NewAuth starts the auth flow that a selects (see AuthOptions) against
// instanceURL, with hc as HTTP client (nil: the default). An empty LoginURL
// means the instance URL for client credentials (the My Domain host is the
// token host) and https://login.salesforce.com for JWT and refresh tokens.
// It is the one place bulkflow turns configuration into credentials: the
// sink and `bulkflow jobs` both use it.
func NewAuth(ctx context.Context, a AuthOptions, instanceURL string, hc *http.Client) (*salesforce.Auth, error) {
	login := a.LoginURL
	switch a.flow() {
	case "access_token":
		return salesforce.StaticToken(instanceURL, a.AccessToken)
	case "client_credentials":
		if login == "" {
			login = instanceURL
		}
		return salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{
			LoginURL: login, ClientID: a.ClientID, ClientSecret: a.ClientSecret, HTTPClient: hc})
	case "refresh_token":
		if login == "" {
			login = salesforce.LoginURL
		}
		return salesforce.RefreshToken(ctx, salesforce.RefreshTokenConfig{
			LoginURL: login, ClientID: a.ClientID, ClientSecret: a.ClientSecret, RefreshToken: a.RefreshToken, HTTPClient: hc})
	case "jwt":
		if login == "" {
			login = salesforce.LoginURL
		}
		return salesforce.JWTBearer(ctx, salesforce.JWTConfig{LoginURL: login, Audience: a.Audience,
			ClientID: a.ClientID, Username: a.Username, PrivateKeyFile: a.PrivateKeyFile, HTTPClient: hc})
	}
	return nil, errors.New("no auth flow configured: set access_token, client_id with client_secret, private_key_file or refresh_token")
}
