# Exit codes: 1 REPRODUCED, 0 not reproduced, 2 could not run (the reason
# on stderr). Every request's answer lands in $JARS/<n> (body) and
# $JARS/<n>.head (status line and headers).
set -o pipefail
cannot() { echo "could not run: $*" >&2; exit 2; }
for tool in curl jq base64; do
  command -v "$tool" >/dev/null 2>&1 || cannot "$tool is not installed"
done
LOWER=abcdefghijklmnopqrstuvwxyz
# $1 with each letter and digit drawn afresh, case kept (an e-mail's domain kept).
fresh() {
  local in=$1 out= tail= i c
  if [[ $in == *@* ]]; then tail=@${in#*@}; in=${in%%@*}; fi
  for ((i = 0; i < ${#in}; i++)); do
    c=${in:i:1}
    case $c in
      [[:lower:]]) c=${LOWER:RANDOM%26:1} ;;
      [[:upper:]]) c=${LOWER:RANDOM%26:1}; c=${c^^} ;;
      [[:digit:]]) c=$((RANDOM % 10)) ;;
    esac
    out+=$c
  done
  printf '%s' "$out$tail"
}
# $1 with the case of $2, letter by letter.
recase() {
  local out= i c
  for ((i = 0; i < ${#1}; i++)); do
    c=${1:i:1}
    [[ ${2:i:1} == [[:upper:]] ]] && c=${c^^}
    out+=$c
  done
  printf '%s' "$out"
}
fresh_date() { printf '%04d-%02d-%02d' $((1940 + RANDOM % 60)) $((1 + RANDOM % 12)) $((1 + RANDOM % 28)); }
# A time years ahead on a five-minute grid, as the harness draws them.
fresh_time() { jq -rn --argjson s $((1924992000 + (RANDOM * 32768 + RANDOM) % 1051200 * 300)) '$s | todate'; }
fresh_canary() { printf 'ct%s' "$(od -An -N10 -tx1 /dev/urandom | tr -d ' \n')"; }
# $1 as one percent-encoded path segment or query value.
uri() { jq -rn --arg v "$1" '$v | @uri'; }
UNSENT=
# Sets variable $1 to what jq filter $3 selects of answer $2, and
# remembers which answer was to give it.
capture() {
  printf -v "$1" '%s' "$(jq -r "$3 // empty" <"$JARS/$2" 2>/dev/null)"
  printf -v "FROM_$1" '%s' "$2"
}
# Whether request $1 has every captured value it needs ($2...). When one
# is missing, the request is not sent: it does not apply when the answer
# that was to give it succeeded without it (a next page that is not
# there), and the script could not run as recorded when that answer failed
# (a sign-up refused, no answer).
need() {
  local n=$1 v from s
  shift
  for v; do
    if [ -z "${!v:-}" ] || [ "${!v}" = null ]; then
      from=FROM_$v
      s=S${!from:-}
      if [[ ${!s:-} == 2* ]]; then
        echo "$n. not sent: answer ${!from} gave no $v, so it does not apply"
      else
        UNSENT+="request $n needs $v, which answer ${!from:-?} (status ${!s:-none}) did not give; "
        echo "$n. not sent: no $v"
      fi
      return 1
    fi
  done
}
# Sends request $1: curl with the rest as its arguments.
send() {
  local n=$1
  shift
  curl -sS -o "$JARS/$n" -D "$JARS/$n.head" "$@" 2>"$JARS/$n.err"
  echo $? >"$JARS/$n.rc"
}
# Answer $1's status into S$1 and body into R$1.
got() {
  local n=$1 rc
  printf -v "S$n" '%s' "$(awk '/^HTTP\// {s = $2} END {print s}' "$JARS/$n.head" 2>/dev/null)"
  printf -v "R$n" '%s' "$(cat "$JARS/$n" 2>/dev/null)"
  rc=$(cat "$JARS/$n.rc" 2>/dev/null) || return 0
  [ "$rc" = 0 ] || UNSENT+="request $n got no answer ($(head -c 200 "$JARS/$n.err")); "
  local s=S$n r=R$n
  echo "$n. ${!s} ${!r:0:2000}"
}
# The base64 fragments of $1 at each alignment, standard and URL-safe.
b64() {
  local off enc start end
  for off in 0 1 2; do
    enc=$({ head -c "$off" /dev/zero; printf '%s' "$1"; } | base64 | tr -d '\n=')
    start=$(((off * 8 + 5) / 6))
    end=$(((off + ${#1}) * 8 / 6))
    enc=${enc:start:end-start}
    printf '%s\n' "$enc" "$(tr '+/' '-_' <<<"$enc")"
  done
}
# Whether answer $1 shows canary $2 encoded as $3 (plain, json-escaped,
# url-encoded, base64), in what jq filter $4 selects of its body ('' for
# the whole answer, headers too), any case.
shows_canary() {
  local text f
  if [ -n "$4" ]; then
    text=$(jq -r "[$4] | .. | strings" <"$JARS/$1" 2>/dev/null)
  else
    text=$(cat "$JARS/$1.head" "$JARS/$1" 2>/dev/null)
  fi
  case $3 in
    base64)
      for f in $(b64 "$2"); do [[ $text == *"$f"* ]] && return 0; done
      return 1 ;;
    url-encoded) text=$(printf '%b' "${text//%/\\x}") ;;
  esac
  grep -qiF -- "$2" <<<"$text"
}
# Whether value $3 is a whole JSON value in what jq filter $2 selects of
# answer $1's body (an id 1 is no part of 1995-11-26).
shows_value() {
  [ -n "$3" ] && jq -e --arg v "$3" "any([$2] | .. | scalars; tostring == \$v)" <"$JARS/$1" >/dev/null 2>&1
}
# Whether value $3 is a whole token of answer $1's header $2 ('' for its body).
shows_token() {
  local text
  if [ -n "$2" ]; then
    text=$(grep -i "^$2:" "$JARS/$1.head" 2>/dev/null | cut -d: -f2-)
  else
    text=$(cat "$JARS/$1" 2>/dev/null)
  fi
  [ -n "$3" ] && tr -c 'A-Za-z0-9_.~-' '\n' <<<"$text" | grep -qxF -- "$3"
}
# The JSON value jq filter $2 selects of answer $1 (its body when not JSON).
value_at() { jq -c "$2" <"$JARS/$1" 2>/dev/null || cat "$JARS/$1" 2>/dev/null; }
