package spec

import (
	"fmt"
	"strings"
)

// parseDotEnv reads a .env file as Compose does: KEY=VALUE lines (or
// KEY: VALUE), an optional "export " before the key, # comments; values
// unquoted (an inline comment starts at " #"), 'single-quoted' (as
// written) or "double-quoted" (\n, \t, \", \\ escapes), quoted ones may
// span lines. Unquoted and double-quoted values are interpolated from env,
// then from the lines above. A bare KEY takes the value env has, if any.
// Variables of env win over the file's, as in Compose. Problems are
// reported as PATH:LINE: message.
func parseDotEnv(path string, data []byte, env Lookup) (map[string]string, error) {
	return dotEnv(path, data, env, true)
}

// parseEnvFile reads a service's env_file as Compose does: a .env file
// whose values are the command's as written (env only interpolates them,
// and gives the bare KEY lines their values).
func parseEnvFile(path string, data []byte, env Lookup) (map[string]string, error) {
	return dotEnv(path, data, env, false)
}

// dotEnv reads a .env file; with envWins a variable env sets keeps env's
// value.
func dotEnv(path string, data []byte, env Lookup, envWins bool) (map[string]string, error) {
	vars := make(map[string]string)
	lookup := func(name string) (string, bool) {
		if v, ok := env(name); ok {
			return v, true
		}
		v, ok := vars[name]
		return v, ok
	}
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	line := 1
	fail := func(format string, args ...any) error {
		return &Error{Path: path, Pos: Pos{Line: line}, Msg: fmt.Sprintf(format, args...)}
	}
	skip := func(cur string, i int) int {
		for i < len(cur) && (cur[i] == ' ' || cur[i] == '\t') {
			i++
		}
		return i
	}
	for len(s) > 0 {
		cur, next, _ := strings.Cut(s, "\n")
		i := skip(cur, 0)
		if i == len(cur) || cur[i] == '#' {
			s, line = next, line+1
			continue
		}
		if strings.HasPrefix(cur[i:], "export ") {
			i = skip(cur, i+len("export "))
		}
		k := i
		for k < len(cur) && (isVarChar(cur[k]) || cur[k] == '.' || cur[k] == '-') {
			k++
		}
		key := cur[i:k]
		if key == "" {
			return nil, fail("expected KEY=VALUE, got %q: a key is letters, digits, '_', '.' and '-'", clip(strings.TrimSpace(cur)))
		}
		i = skip(cur, k)
		if i == len(cur) {
			if v, ok := env(key); ok {
				vars[key] = v
			}
			s, line = next, line+1
			continue
		}
		if cur[i] != '=' && cur[i] != ':' {
			return nil, fail("expected '=' after %s, got %q", clip(key), clip(cur[i:]))
		}
		i = skip(cur, i+1)
		var val string
		if i < len(cur) && (cur[i] == '\'' || cur[i] == '"') {
			q, body := cur[i], s[i+1:] // a quoted value may span lines
			end := -1
			for j := 0; j < len(body) && end < 0; j++ {
				switch {
				case body[j] == '\\' && q == '"':
					j++
				case body[j] == q:
					end = j
				}
			}
			if end < 0 {
				return nil, fail("the %c quote of %s is not closed", q, clip(key))
			}
			val = body[:end]
			tail, rest, _ := strings.Cut(body[end+1:], "\n")
			line += strings.Count(val, "\n")
			if t := strings.TrimSpace(tail); t != "" && t[0] != '#' {
				return nil, fail("%s: unexpected %q after the closing quote", clip(key), clip(t))
			}
			next = rest
			if q == '"' {
				v, err := substitute(unescapeDouble(val), lookup, nil)
				if err != nil {
					return nil, fail("%s: %v", clip(key), err)
				}
				val = v
			}
		} else {
			raw := cur[i:]
			for _, c := range []string{" #", "\t#"} {
				if j := strings.Index(raw, c); j >= 0 {
					raw = raw[:j]
				}
			}
			v, err := substitute(strings.TrimSpace(raw), lookup, nil)
			if err != nil {
				return nil, fail("%s: %v", clip(key), err)
			}
			val = v
		}
		if _, ok := env(key); !ok || !envWins {
			vars[key] = val
		}
		s, line = next, line+1
	}
	return vars, nil
}

// unescapeDouble applies the escapes of a double-quoted .env value.
func unescapeDouble(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '"', '\\':
			b.WriteByte(s[i])
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
