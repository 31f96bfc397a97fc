package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

func open(h http.Handler) http.Handler { return h }

// admin requires the admin token when one is configured. The comparison is
// constant-time over SHA-256 digests, so neither the content nor the length
// of the token leaks through timing. Nothing here logs the token.
func (s *Server) admin(h http.Handler) http.Handler {
	if s.cfg.AdminToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		got := sha256.Sum256([]byte(token))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="refit"`)
			msg := "this call needs the admin token: send Authorization: Bearer <REFIT_ADMIN_TOKEN>"
			if ok {
				msg = "invalid token in Authorization: Bearer"
			}
			s.fail(w, r, errorf(http.StatusUnauthorized, "%s", msg))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
