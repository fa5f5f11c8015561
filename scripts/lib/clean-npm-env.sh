# Sourced by the install scripts. An install started from `npm test` or `npm start` inherits the outer run's
# npm_* variables: npm_config_user_agent names the outer Node (20), and code-server's postinstall reads its
# Node version from there and refuses to build. Install as if the command were typed in a fresh shell:
# drop every variable npm sets for a script it runs, so the outcome is the same however it is started.
clean_npm_env() {
	local name
	while IFS= read -r name; do
		case "$name" in
		npm_* | NPM_* | INIT_CWD | NODE | NODE_ENV) unset "$name" ;;
		esac
	done < <(compgen -e)
}
