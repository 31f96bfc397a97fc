package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/refit-ml/refit/webhook"
)

// Access is who may call what, and who hears of promotions.
type Access struct {
	// AdminToken guards admin calls (promote, rollback, uploads,
	// reproduce, the webhook delivery log); empty leaves them open.
	AdminToken         string
	ProtectPredict     bool
	ProtectCorrections bool
	// Webhooks receive every model.promoted, signed with WebhookSecret.
	Webhooks      []string
	WebhookSecret string
}

// loadAccess reads REFIT_ADMIN_TOKEN, REFIT_PREDICT_AUTH,
// REFIT_CORRECTIONS_AUTH, REFIT_WEBHOOKS and REFIT_WEBHOOK_SECRET. Errors
// never echo a token, a secret or a URL's credentials.
func loadAccess(getenv func(string) string) (Access, error) {
	a := Access{
		AdminToken:    strings.TrimSpace(getenv("REFIT_ADMIN_TOKEN")),
		WebhookSecret: getenv("REFIT_WEBHOOK_SECRET"),
	}
	for _, m := range []struct {
		name string
		dst  *bool
	}{{"REFIT_PREDICT_AUTH", &a.ProtectPredict}, {"REFIT_CORRECTIONS_AUTH", &a.ProtectCorrections}} {
		switch v := strings.TrimSpace(getenv(m.name)); v {
		case "", "open":
		case "token":
			if a.AdminToken == "" {
				return a, &settingError{m.name, "token needs REFIT_ADMIN_TOKEN"}
			}
			*m.dst = true
		default:
			return a, &settingError{m.name, fmt.Sprintf("%q: want open or token", v)}
		}
	}
	for _, u := range strings.Split(getenv("REFIT_WEBHOOKS"), ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return a, &settingError{"REFIT_WEBHOOKS", fmt.Sprintf("%q is not an http(s) URL", webhook.Redact(u))}
		}
		a.Webhooks = append(a.Webhooks, u)
	}
	if len(a.Webhooks) > 0 && a.WebhookSecret == "" {
		return a, &settingError{"REFIT_WEBHOOK_SECRET", "required with REFIT_WEBHOOKS (receivers verify the signature with it)"}
	}
	return a, nil
}
