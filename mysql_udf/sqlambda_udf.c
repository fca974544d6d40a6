/*
 * sqlambda_udf.c: MySQL / MariaDB loadable functions (UDFs) that invoke AWS Lambda.
 *
 * Owns: the HTTP call to Lambda's Invoke API (libcurl), its AWS Signature Version 4 (OpenSSL's
 * SHA-256 and HMAC), credentials (the server's environment, else EC2 instance metadata IMDSv2,
 * refreshed five minutes before they expire), retries with jittered exponential backoff on
 * throttling, 5xx and connection failures, connect/read timeouts, Lambda's payload limits, and
 * turning a Lambda error into an SQL error that carries its errorType and errorMessage.
 * Must not: decide who may call (the stored functions sqlambda installs do: see "The key" below),
 * take anything from a session (endpoint, region and credentials come only from mysqld's
 * environment, which only the DBA sets), or keep state between calls other than the per-thread
 * HTTP connection and the credential cache.
 *
 * Functions (all take the key first; the stored functions pass it, see below):
 *   sqlambda_invoke(key, function, payload, mode)   mode 0: RequestResponse, returns the payload
 *                                                   mode 1: Event, returns '' once Lambda accepted it
 *                                                   mode 2: DryRun, returns ''
 *                                                   mode 3: no request; '' when the key is this plugin's
 *                                                   (the installer checks a key it found before trusting it)
 *   sqlambda_config()   JSON: endpoint, region, credential source, timeouts, build (no secrets)
 *
 * The key: MySQL and MariaDB have no privilege on a loadable function, so any account could call
 * one. Every function here therefore wants, first, the 64-hex key compiled into this file by the
 * installer (-DSQLAMBDA_KEY=...); the installer keeps the same key in a table that only the definer
 * of sqlambda's SQL SECURITY DEFINER stored functions can read. Whoever holds EXECUTE on one of
 * those stored functions can call Lambda through it; nobody else can (a wrong key is refused before
 * any request, compared in constant time).
 *
 * Server configuration (mysqld's environment, e.g. a systemd drop-in; never a session):
 *   AWS_REGION / AWS_DEFAULT_REGION     region (default us-east-1; an ARN's own region wins)
 *   AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL   endpoint override (VPC endpoint, local stack)
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN   static credentials
 *   AWS_EC2_METADATA_SERVICE_ENDPOINT   IMDS address (default http://169.254.169.254)
 *   AWS_EC2_METADATA_DISABLED=true      never ask IMDS
 *   SQLAMBDA_CONNECT_TIMEOUT_MS (2000), SQLAMBDA_READ_TIMEOUT_MS (30000), SQLAMBDA_MAX_ATTEMPTS (3)
 *
 * Why hand-written rather than a library: the AWS C++ SDK (what the original prototype used) is a
 * large C++ dependency to build into mysqld; libcurl's CURLOPT_AWS_SIGV4 (7.88 in Debian 12) signs
 * neither the session token nor the double-encoded path Lambda's ARNs need. SigV4 here is ~80 lines
 * and is tested against botocore's signer on thousands of generated requests
 * (tests/mysql/test_sigv4.py). The JSON reader below only reads a few top-level string fields
 * (errorType, errorMessage, IMDS credentials); payloads pass through untouched.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <mysql.h>

#ifndef SQLAMBDA_KEY
#define SQLAMBDA_KEY ""
#endif
#ifndef SQLAMBDA_BUILD
#define SQLAMBDA_BUILD "dev"
#endif

#define SYNC_LIMIT (6 * 1024 * 1024)  /* Lambda: 6 MB request and response, synchronous */
#define ASYNC_LIMIT (1024 * 1024)     /* Lambda: 1 MB for an asynchronous (Event) invocation */
#define RESPONSE_CAP (SYNC_LIMIT + 65536)
#define ERR_LEN 480                   /* fits MYSQL_ERRMSG_SIZE (512) with room for a prefix */
#define ER_SQLAMBDA 1105              /* ER_UNKNOWN_ERROR: SQLSTATE HY000 with our own text */

typedef char udf_bool; /* my_bool (MariaDB) and bool (MySQL 8) are both one byte returned in a register */

/* ---- growable buffer --------------------------------------------------------------------- */
typedef struct { char *p; size_t len, cap; int oom; } buf;

static int buf_add(buf *b, const char *s, size_t n) {
  if (b->oom) return -1;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = 1; return -1; }
    b->p = p; b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}
static int buf_str(buf *b, const char *s) { return buf_add(b, s, strlen(s)); }
static int buf_fmt(buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap; va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  return buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
static void buf_free(buf *b) { free(b->p); b->p = NULL; b->len = b->cap = 0; b->oom = 0; }

/* ---- SigV4 -------------------------------------------------------------------------------- */
static void hex(const unsigned char *in, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) { out[2 * i] = d[in[i] >> 4]; out[2 * i + 1] = d[in[i] & 15]; }
  out[2 * n] = 0;
}
static void sha256_hex(const void *data, size_t n, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)data, n, md);
  hex(md, sizeof md, out);
}
static void hmac(const void *key, size_t klen, const char *data, unsigned char out[32]) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, strlen(data), out, &len);
}
/* RFC 3986 percent-encoding of everything but unreserved characters (and '/' when keep_slash). */
static int uri_encode(buf *b, const char *s, size_t n, int keep_slash) {
  static const char d[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      if (buf_add(b, (const char *)&c, 1)) return -1;
    } else {
      char e[3] = {'%', d[c >> 4], d[c & 15]};
      if (buf_add(b, e, 3)) return -1;
    }
  }
  return 0;
}

/* The path of Lambda's Invoke for a function name (or ARN, or name:qualifier), as sent. */
int sqlambda_invoke_path(const char *name, size_t n, char *out, size_t outlen) {
  buf b = {0};
  buf_str(&b, "/2015-03-31/functions/");
  uri_encode(&b, name, n, 0);
  buf_str(&b, "/invocations");
  int rc = (b.oom || b.len + 1 > outlen) ? -1 : 0;
  if (!rc) memcpy(out, b.p, b.len + 1);
  buf_free(&b);
  return rc;
}

/*
 * The Authorization header value of a POST to `path` (as sent, already percent-encoded once) on
 * `host`, signed for `service` in `region` at `amzdate` (YYYYMMDDTHHMMSSZ). Signed headers: host,
 * x-amz-date, x-amz-invocation-type (when given) and x-amz-security-token (when a token is given).
 * Exported so the tests can compare it with botocore's signer; returns 0, or -1 when out is short.
 */
int sqlambda_sigv4(const char *host, const char *path, const char *amzdate, const char *region,
                   const char *service, const char *akid, const char *secret, const char *token,
                   const char *invocation_type, const char *payload, size_t plen, char *out, size_t outlen) {
  char payload_hash[65], creq_hash[65], sig_hex[65];
  char date[9];
  memcpy(date, amzdate, 8); date[8] = 0;
  sha256_hex(payload ? payload : "", payload ? plen : 0, payload_hash);

  buf creq = {0}, signed_headers = {0};
  buf_str(&creq, "POST\n");
  uri_encode(&creq, path, strlen(path), 1); /* non-S3 services: the path is encoded once more */
  buf_str(&creq, "\n\n");
  buf_fmt(&creq, "host:%s\nx-amz-date:%s\n", host, amzdate);
  buf_str(&signed_headers, "host;x-amz-date");
  if (invocation_type && *invocation_type) {
    buf_fmt(&creq, "x-amz-invocation-type:%s\n", invocation_type);
    buf_str(&signed_headers, ";x-amz-invocation-type");
  }
  if (token && *token) {
    buf_str(&creq, "x-amz-security-token:");
    buf_str(&creq, token);
    buf_str(&creq, "\n");
    buf_str(&signed_headers, ";x-amz-security-token");
  }
  buf_fmt(&creq, "\n%s\n%s", signed_headers.p, payload_hash);
  if (creq.oom || signed_headers.oom) { buf_free(&creq); buf_free(&signed_headers); return -1; }
  sha256_hex(creq.p, creq.len, creq_hash);

  buf sts = {0};
  buf_fmt(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amzdate, date, region, service, creq_hash);

  buf k = {0};
  buf_str(&k, "AWS4");
  buf_str(&k, secret);
  unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
  hmac(k.p, k.len, date, k1);
  hmac(k1, 32, region, k2);
  hmac(k2, 32, service, k3);
  hmac(k3, 32, "aws4_request", k4);
  hmac(k4, 32, sts.p, sig);
  hex(sig, 32, sig_hex);
  OPENSSL_cleanse(k.p, k.len);
  OPENSSL_cleanse(k1, 32); OPENSSL_cleanse(k2, 32); OPENSSL_cleanse(k3, 32); OPENSSL_cleanse(k4, 32);

  int n = snprintf(out, outlen, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                   akid, date, region, service, signed_headers.p, sig_hex);
  buf_free(&creq); buf_free(&signed_headers); buf_free(&sts); buf_free(&k);
  return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* ---- a reader of top-level JSON string fields ---------------------------------------------- */
static const char *ws(const char *p, const char *e) { while (p < e && isspace((unsigned char)*p)) p++; return p; }

/* Reads a JSON string at p (after the opening quote is checked), decoding escapes into out. */
static const char *jstring(const char *p, const char *e, buf *out) {
  if (p >= e || *p != '"') return NULL;
  for (p++; p < e; p++) {
    char c = *p;
    if (c == '"') return p + 1;
    if (c != '\\') { if (out) buf_add(out, &c, 1); continue; }
    if (++p >= e) return NULL;
    char r;
    switch (*p) {
      case 'n': r = '\n'; break; case 't': r = '\t'; break; case 'r': r = '\r'; break;
      case 'b': r = '\b'; break; case 'f': r = '\f'; break;
      case 'u': {
        if (e - p < 5) return NULL;
        unsigned v = 0;
        for (int i = 1; i <= 4; i++) {
          char h = p[i];
          v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
        }
        p += 4;
        if (out) { /* UTF-8 of the BMP code point (surrogate halves kept as they are: text only) */
          char u[3]; size_t k;
          if (v < 0x80) { u[0] = (char)v; k = 1; }
          else if (v < 0x800) { u[0] = (char)(0xC0 | (v >> 6)); u[1] = (char)(0x80 | (v & 0x3F)); k = 2; }
          else { u[0] = (char)(0xE0 | (v >> 12)); u[1] = (char)(0x80 | ((v >> 6) & 0x3F)); u[2] = (char)(0x80 | (v & 0x3F)); k = 3; }
          buf_add(out, u, k);
        }
        continue;
      }
      default: r = *p;
    }
    if (out) buf_add(out, &r, 1);
  }
  return NULL;
}
static const char *jskip(const char *p, const char *e, int depth) {
  p = ws(p, e);
  if (p >= e || depth > 64) return NULL;
  if (*p == '"') return jstring(p, e, NULL);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (!(p = jstring(ws(p, e), e, NULL))) return NULL;
        p = ws(p, e);
        if (p >= e || *p != ':') return NULL;
        p++;
      }
      if (!(p = jskip(p, e, depth + 1))) return NULL;
      p = ws(p, e);
      if (p < e && *p == ',') { p++; continue; }
      if (p < e && *p == close) return p + 1;
      return NULL;
    }
  }
  while (p < e && !strchr(",}] \t\r\n", *p)) p++; /* number, true, false, null */
  return p;
}
/* The string value of top-level `key` of the JSON object in [s, s+n); 0 when found. */
static int json_field(const char *s, size_t n, const char *key, buf *out) {
  const char *p = ws(s, s + n), *e = s + n;
  if (p >= e || *p != '{') return -1;
  p = ws(p + 1, e);
  if (p < e && *p == '}') return -1;
  for (;;) {
    buf k = {0};
    p = jstring(ws(p, e), e, &k);
    if (!p) { buf_free(&k); return -1; }
    p = ws(p, e);
    if (p >= e || *p != ':') { buf_free(&k); return -1; }
    p = ws(p + 1, e);
    int match = k.p && strcmp(k.p, key) == 0;
    buf_free(&k);
    if (match && p < e && *p == '"') return jstring(p, e, out) ? 0 : -1;
    if (!(p = jskip(p, e, 1))) return -1;
    p = ws(p, e);
    if (p < e && *p == ',') { p++; continue; }
    return -1;
  }
}

/* ---- configuration (mysqld's environment, read once) ------------------------------------- */
static struct {
  char endpoint[512]; /* empty: https://lambda.<region>.amazonaws.com */
  char region[64];
  char imds[256];
  int imds_disabled;
  long connect_ms, read_ms;
  int max_attempts;
  char akid[256], secret[256], token[4096];
  int env_creds;
  char init_error[256];
} cfg;

static long env_long(const char *name, long dflt, long lo, long hi) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end; long n = strtol(v, &end, 10);
  return (*end || n < lo || n > hi) ? dflt : n;
}
static void env_copy(char *dst, size_t n, const char *a, const char *b, const char *dflt) {
  const char *v = getenv(a);
  if ((!v || !*v) && b) v = getenv(b);
  if (!v || !*v) v = dflt;
  snprintf(dst, n, "%s", v ? v : "");
}

typedef void (*printf_error_fn)(unsigned int, const char *, unsigned long, ...);
static printf_error_fn sql_error; /* the server's my_printf_error, when mysqld exports it */
static pthread_key_t curl_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cred_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char akid[256], secret[256], token[4096]; time_t expires; } imds_creds;

static void thread_curl_free(void *p) { if (p) curl_easy_cleanup((CURL *)p); }

static void init_once(void) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(cfg.init_error, sizeof cfg.init_error, "libcurl failed to initialise");
    return;
  }
  if (pthread_key_create(&curl_key, thread_curl_free)) {
    snprintf(cfg.init_error, sizeof cfg.init_error, "pthread_key_create failed");
    return;
  }
  env_copy(cfg.endpoint, sizeof cfg.endpoint, "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL", "");
  size_t n = strlen(cfg.endpoint);
  while (n && cfg.endpoint[n - 1] == '/') cfg.endpoint[--n] = 0;
  if (n && strncmp(cfg.endpoint, "http://", 7) && strncmp(cfg.endpoint, "https://", 8))
    snprintf(cfg.init_error, sizeof cfg.init_error, "AWS_ENDPOINT_URL is not http(s)://host[:port]");
  env_copy(cfg.region, sizeof cfg.region, "AWS_REGION", "AWS_DEFAULT_REGION", "us-east-1");
  env_copy(cfg.imds, sizeof cfg.imds, "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL, "http://169.254.169.254");
  n = strlen(cfg.imds);
  while (n && cfg.imds[n - 1] == '/') cfg.imds[--n] = 0;
  const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
  cfg.imds_disabled = dis && strcasecmp(dis, "true") == 0;
  cfg.connect_ms = env_long("SQLAMBDA_CONNECT_TIMEOUT_MS", 2000, 100, 60000);
  cfg.read_ms = env_long("SQLAMBDA_READ_TIMEOUT_MS", 30000, 100, 900000);
  cfg.max_attempts = (int)env_long("SQLAMBDA_MAX_ATTEMPTS", 3, 1, 10);
  env_copy(cfg.akid, sizeof cfg.akid, "AWS_ACCESS_KEY_ID", NULL, "");
  env_copy(cfg.secret, sizeof cfg.secret, "AWS_SECRET_ACCESS_KEY", NULL, "");
  env_copy(cfg.token, sizeof cfg.token, "AWS_SESSION_TOKEN", NULL, "");
  cfg.env_creds = cfg.akid[0] && cfg.secret[0];
  sql_error = (printf_error_fn)dlsym(RTLD_DEFAULT, "my_printf_error");
}

/* ---- credentials ------------------------------------------------------------------------- */
typedef struct { char akid[256], secret[256], token[4096]; } creds;

static size_t collect(char *data, size_t size, size_t nmemb, void *userp) {
  buf *b = userp;
  size_t n = size * nmemb;
  if (b->len + n > RESPONSE_CAP) return 0; /* larger than any Lambda response may be */
  return buf_add(b, data, n) ? 0 : n;
}

/* GET (or PUT for the token) one IMDS path; 0 and the body on HTTP 200. */
static int imds_request(CURL *c, const char *path, const char *token, int put, buf *out) {
  char url[512], hdr[256];
  struct curl_slist *h = NULL;
  snprintf(url, sizeof url, "%s%s", cfg.imds, path);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_PROXY, ""); /* IMDS is link-local: never through a proxy */
  if (put) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
    h = curl_slist_append(h, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
  } else {
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", token);
    h = curl_slist_append(h, hdr);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  return (rc == CURLE_OK && status == 200 && !out->oom) ? 0 : -1;
}

static time_t parse_iso8601(const char *s) {
  struct tm tm = {0};
  if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return timegm(&tm);
}

/* Fetches credentials from IMDSv2 into imds_creds (cred_mu held). */
static int imds_refresh(char *err) {
  CURL *c = curl_easy_init();
  if (!c) { snprintf(err, ERR_LEN, "out of memory"); return -1; }
  buf token = {0}, role = {0}, doc = {0}, v = {0};
  int rc = -1;
  char path[512];
  if (imds_request(c, "/latest/api/token", NULL, 1, &token)) {
    snprintf(err, ERR_LEN, "no AWS credentials: none in mysqld's environment and no IMDSv2 token from %s", cfg.imds);
    goto out;
  }
  if (imds_request(c, "/latest/meta-data/iam/security-credentials/", token.p, 0, &role) || !role.len) {
    snprintf(err, ERR_LEN, "no AWS credentials: the instance at %s has no IAM role", cfg.imds);
    goto out;
  }
  role.p[strcspn(role.p, "\r\n")] = 0;
  snprintf(path, sizeof path, "/latest/meta-data/iam/security-credentials/%s", role.p);
  if (imds_request(c, path, token.p, 0, &doc)) {
    snprintf(err, ERR_LEN, "no AWS credentials: IMDS refused the credentials of role %s", role.p);
    goto out;
  }
  if (json_field(doc.p, doc.len, "AccessKeyId", &v) || !v.len) goto bad;
  snprintf(imds_creds.akid, sizeof imds_creds.akid, "%s", v.p); buf_free(&v);
  if (json_field(doc.p, doc.len, "SecretAccessKey", &v) || !v.len) goto bad;
  snprintf(imds_creds.secret, sizeof imds_creds.secret, "%s", v.p); OPENSSL_cleanse(v.p, v.len); buf_free(&v);
  if (json_field(doc.p, doc.len, "Token", &v)) goto bad;
  snprintf(imds_creds.token, sizeof imds_creds.token, "%s", v.p ? v.p : ""); buf_free(&v);
  json_field(doc.p, doc.len, "Expiration", &v);
  imds_creds.expires = parse_iso8601(v.p);
  if (!imds_creds.expires) imds_creds.expires = time(NULL) + 900;
  rc = 0;
  goto out;
bad:
  snprintf(err, ERR_LEN, "no AWS credentials: IMDS returned a credentials document sqlambda cannot read");
out:
  if (doc.p) OPENSSL_cleanse(doc.p, doc.len);
  buf_free(&token); buf_free(&role); buf_free(&doc); buf_free(&v);
  curl_easy_cleanup(c);
  return rc;
}

static int get_creds(creds *out, char *err) {
  if (cfg.env_creds) {
    memcpy(out->akid, cfg.akid, sizeof out->akid);
    memcpy(out->secret, cfg.secret, sizeof out->secret);
    memcpy(out->token, cfg.token, sizeof out->token);
    return 0;
  }
  if (cfg.imds_disabled) {
    snprintf(err, ERR_LEN, "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in mysqld's environment "
                           "(IMDS is disabled by AWS_EC2_METADATA_DISABLED)");
    return -1;
  }
  pthread_mutex_lock(&cred_mu);
  time_t now = time(NULL);
  int rc = 0;
  /* refresh five minutes before expiry; an old set that is still valid is used if the refresh fails */
  if (!imds_creds.expires || now >= imds_creds.expires - 300) {
    char e2[ERR_LEN];
    if (imds_refresh(e2) && (!imds_creds.expires || now >= imds_creds.expires)) {
      snprintf(err, ERR_LEN, "%s", e2);
      rc = -1;
    }
  }
  if (!rc) {
    memcpy(out->akid, imds_creds.akid, sizeof out->akid);
    memcpy(out->secret, imds_creds.secret, sizeof out->secret);
    memcpy(out->token, imds_creds.token, sizeof out->token);
  }
  pthread_mutex_unlock(&cred_mu);
  return rc;
}

/* ---- one invocation ------------------------------------------------------------------------ */
typedef struct { char function_error[128]; char error_type[256]; } resp_headers;

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp) {
  resp_headers *h = userp;
  size_t n = size * nmemb;
  char line[512];
  size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
  memcpy(line, data, k); line[k] = 0;
  line[strcspn(line, "\r\n")] = 0;
  char *colon = strchr(line, ':');
  if (!colon) return n;
  *colon = 0;
  char *v = colon + 1;
  while (*v == ' ') v++;
  if (strcasecmp(line, "X-Amz-Function-Error") == 0) snprintf(h->function_error, sizeof h->function_error, "%s", v);
  else if (strcasecmp(line, "x-amzn-ErrorType") == 0) {
    v[strcspn(v, ":")] = 0; /* "ResourceNotFoundException:http://internal.amazon.com/..." */
    snprintf(h->error_type, sizeof h->error_type, "%s", v);
  }
  return n;
}

static CURL *thread_curl(void) {
  CURL *c = pthread_getspecific(curl_key);
  if (!c) {
    c = curl_easy_init();
    if (c && pthread_setspecific(curl_key, c)) { curl_easy_cleanup(c); c = NULL; }
  }
  /* no curl_easy_reset: every option a call depends on is set again before each perform, and the
     handle keeps its live connection, DNS and TLS session caches */
  return c;
}

static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > 256) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(isalnum(c) || c == '-' || c == '_' || c == ':' || c == '.' || c == '$')) return 0;
  }
  return 1;
}

/* "arn:aws:lambda:REGION:..." -> REGION (and the partition's DNS suffix); else the configured one.
   -1 when the ARN's region is not a region name: it becomes part of the host a signed request goes to
   (a caller must not point it at another service, e.g. "s3" -> lambda.s3.amazonaws.com). */
static int target_region(const char *name, size_t n, char *region, size_t rlen, const char **suffix) {
  *suffix = "amazonaws.com";
  snprintf(region, rlen, "%s", cfg.region);
  if (n < 4 || strncmp(name, "arn:", 4)) return 0;
  const char *f[5]; size_t fl[5]; int k = 0;
  const char *p = name, *e = name + n;
  while (k < 5 && p <= e) {
    const char *q = memchr(p, ':', (size_t)(e - p));
    if (!q) q = e;
    f[k] = p; fl[k] = (size_t)(q - p); k++;
    p = q + 1;
  }
  if (k < 5 || fl[3] == 0 || fl[3] >= rlen) return -1;
  /* a region: lowercase words joined by '-', ending in a number (us-east-1, us-gov-west-1) */
  int dashes = 0;
  for (size_t i = 0; i < fl[3]; i++) {
    char ch = f[3][i];
    if (ch == '-') dashes++;
    else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) return -1;
  }
  if (dashes < 2 || !isdigit((unsigned char)f[3][fl[3] - 1]) || f[3][0] == '-') return -1;
  memcpy(region, f[3], fl[3]); region[fl[3]] = 0;
  if (fl[1] == 6 && memcmp(f[1], "aws-cn", 6) == 0) *suffix = "amazonaws.com.cn";
  return 0;
}

static void backoff(int attempt) {
  static __thread unsigned seed;
  if (!seed) seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
  double cap = 50.0 * (1 << (attempt < 6 ? attempt : 6)); /* ms: 100, 200, 400 ... capped at 3.2 s */
  double ms = cap * ((double)rand_r(&seed) / RAND_MAX);    /* full jitter */
  usleep((useconds_t)(ms * 1000));
}

/*
 * Invokes `name` with `payload` (mode 0 RequestResponse, 1 Event, 2 DryRun). On success returns 0
 * with the response body in `out`; else -1 with the error text in `err`.
 */
static int lambda_invoke(const char *name, size_t nlen, const char *payload, size_t plen, int mode, buf *out, char *err) {
  static const char *types[] = {"RequestResponse", "Event", "DryRun"};
  char shown[96];
  snprintf(shown, sizeof shown, "%.*s", (int)(nlen < 80 ? nlen : 80), name);
  if (!valid_name(name, nlen)) {
    snprintf(err, ERR_LEN, "invalid Lambda function name %s%s: use a name, name:qualifier or ARN "
             "(letters, digits, - _ : . $)", nlen ? shown : "''", nlen > 80 ? "..." : "");
    return -1;
  }
  size_t limit = mode == 1 ? ASYNC_LIMIT : SYNC_LIMIT;
  if (plen > limit) {
    snprintf(err, ERR_LEN, "lambda %s: payload of %zu bytes exceeds the %s limit of %zu bytes", shown, plen,
             mode == 1 ? "asynchronous (Event)" : "synchronous", limit);
    return -1;
  }
  char region[64], url[1024], host[512], path[700], amzdate[17], auth[1024];
  const char *suffix;
  if (target_region(name, nlen, region, sizeof region, &suffix)) {
    snprintf(err, ERR_LEN, "invalid Lambda function ARN %s%s: its region is not a region name", shown, nlen > 80 ? "..." : "");
    return -1;
  }
  if (sqlambda_invoke_path(name, nlen, path, sizeof path)) { snprintf(err, ERR_LEN, "function name too long"); return -1; }
  if (cfg.endpoint[0]) snprintf(url, sizeof url, "%s%s", cfg.endpoint, path);
  else snprintf(url, sizeof url, "https://lambda.%s.%s%s", region, suffix, path);
  /* Host as the URL's authority, without a default port (what curl sends and botocore signs) */
  const char *a = strstr(url, "://") + 3;
  size_t alen = strcspn(a, "/");
  snprintf(host, sizeof host, "%.*s", (int)alen, a);
  size_t hl = strlen(host);
  if (!strncmp(url, "https", 5) && hl > 4 && !strcmp(host + hl - 4, ":443")) host[hl - 4] = 0;
  else if (!strncmp(url, "http:", 5) && hl > 3 && !strcmp(host + hl - 3, ":80")) host[hl - 3] = 0;

  creds cr;
  if (get_creds(&cr, err)) return -1;
  CURL *c = thread_curl();
  if (!c) { snprintf(err, ERR_LEN, "out of memory"); return -1; }

  int rc = -1;
  for (int attempt = 1;; attempt++) {
    resp_headers rh = {{0}, {0}};
    struct curl_slist *h = NULL;
    char line[4200];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amzdate, sizeof amzdate, "%Y%m%dT%H%M%SZ", &tm);
    if (sqlambda_sigv4(host, path, amzdate, region, "lambda", cr.akid, cr.secret, cr.token, types[mode],
                       payload, plen, auth, sizeof auth)) {
      snprintf(err, ERR_LEN, "could not sign the request");
      break;
    }
    snprintf(line, sizeof line, "Host: %s", host); h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Amz-Date: %s", amzdate); h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-Amz-Invocation-Type: %s", types[mode]); h = curl_slist_append(h, line);
    if (cr.token[0]) { snprintf(line, sizeof line, "X-Amz-Security-Token: %s", cr.token); h = curl_slist_append(h, line); }
    snprintf(line, sizeof line, "Authorization: %s", auth); h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Content-Type:"); /* curl's default form type would be wrong */
    h = curl_slist_append(h, "Expect:");       /* no 100-continue round trip */
    h = curl_slist_append(h, "User-Agent: sqlambda-mysql/" SQLAMBDA_BUILD);

    out->len = 0; if (out->p) out->p[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(payload ? plen : 0));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cfg.connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cfg.read_ms + cfg.connect_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &rh);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(h);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

    int retry = 0;
    if (cc == CURLE_WRITE_ERROR) {
      snprintf(err, ERR_LEN, "lambda %s: the response is larger than Lambda's 6 MB limit", shown);
      break;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
      /* the function may be running: a synchronous call is not sent twice */
      snprintf(err, ERR_LEN, "lambda %s: no answer within %ld ms (SQLAMBDA_READ_TIMEOUT_MS)", shown, cfg.read_ms);
      long sent = 0; /* bytes of the request sent (a reused connection has no connect time to go by) */
      curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
      retry = sent == 0 || mode != 0; /* never sent, or an Event/DryRun: safe to send again */
    } else if (cc != CURLE_OK) {
      snprintf(err, ERR_LEN, "lambda %s: cannot reach %s: %s", shown, cfg.endpoint[0] ? cfg.endpoint : host,
               curl_easy_strerror(cc));
      long sent = 0;
      curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
      /* before the request left: always safe to try again; after it (the connection broke while
         Lambda may be running the function): only an Event or DryRun, never a synchronous call */
      retry = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_SSL_CONNECT_ERROR ||
              ((cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR) && (sent == 0 || mode != 0));
    } else if (status >= 200 && status < 300 && rh.function_error[0]) {
      buf t = {0}, m = {0};
      json_field(out->p ? out->p : "", out->len, "errorType", &t);
      json_field(out->p ? out->p : "", out->len, "errorMessage", &m);
      snprintf(err, ERR_LEN, "lambda %s failed: %s: %s", shown, t.len ? t.p : rh.function_error,
               m.len ? m.p : (out->len ? out->p : "(no message)"));
      buf_free(&t); buf_free(&m);
      break;
    } else if (status >= 200 && status < 300) {
      rc = 0;
      break;
    } else {
      buf m = {0};
      if (json_field(out->p ? out->p : "", out->len, "message", &m)) json_field(out->p ? out->p : "", out->len, "Message", &m);
      snprintf(err, ERR_LEN, "lambda %s: HTTP %ld %s: %s", shown, status, rh.error_type[0] ? rh.error_type : "error",
               m.len ? m.p : (out->len ? out->p : ""));
      buf_free(&m);
      retry = status == 429 || status >= 500;
    }
    if (!retry || attempt >= cfg.max_attempts) break;
    backoff(attempt);
  }
  OPENSSL_cleanse(cr.secret, sizeof cr.secret);
  return rc;
}

/* ---- the UDF entry points ------------------------------------------------------------------ */
static int key_ok(UDF_ARGS *args) {
  static const char key[] = SQLAMBDA_KEY;
  size_t n = sizeof key - 1;
  if (n < 32 || !args->args[0] || args->lengths[0] != n) return 0;
  return CRYPTO_memcmp(args->args[0], key, n) == 0;
}

static void report(char *error, char *is_null, const char *msg) {
  if (sql_error) sql_error(ER_SQLAMBDA, "%s", 0UL, msg);
  *error = 1;
  *is_null = 1;
}

udf_bool sqlambda_invoke_init(UDF_INIT *initid, UDF_ARGS *args, char *message) {
  pthread_once(&once, init_once);
  if (cfg.init_error[0]) { snprintf(message, 400, "sqlambda: %s", cfg.init_error); return 1; }
  if (args->arg_count != 4) { snprintf(message, 400, "sqlambda_invoke(key, function, payload, mode) takes 4 arguments"); return 1; }
  args->arg_type[0] = args->arg_type[1] = args->arg_type[2] = STRING_RESULT;
  args->arg_type[3] = INT_RESULT;
  initid->maybe_null = 1;
  initid->const_item = 0;
  initid->max_length = RESPONSE_CAP;
  initid->ptr = NULL;
  return 0;
}

void sqlambda_invoke_deinit(UDF_INIT *initid) { free(initid->ptr); initid->ptr = NULL; }

char *sqlambda_invoke(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length, char *is_null, char *error) {
  char err[ERR_LEN + 16];
  if (!key_ok(args)) {
    report(error, is_null, "sqlambda: this function is called through sqlambda's stored functions only "
                           "(ask for EXECUTE on one of them)");
    return NULL;
  }
  if (!args->args[1]) { report(error, is_null, "lambda function name is NULL"); return NULL; }
  long long mode = args->args[3] ? *(long long *)args->args[3] : 0;
  if (mode == 3) { *length = 0; *is_null = 0; return result; } /* the key is right; nothing is sent */
  if (mode < 0 || mode > 2) { report(error, is_null, "sqlambda_invoke: mode is 0 (sync), 1 (async) or 2 (dry run)"); return NULL; }
  buf out = {0};
  if (lambda_invoke(args->args[1], args->lengths[1], args->args[2], args->args[2] ? args->lengths[2] : 0,
                    (int)mode, &out, err)) {
    buf_free(&out);
    report(error, is_null, err);
    return NULL;
  }
  free(initid->ptr);
  initid->ptr = out.p ? out.p : strdup("");
  *length = out.p ? out.len : 0;
  *is_null = 0;
  return initid->ptr;
}

udf_bool sqlambda_config_init(UDF_INIT *initid, UDF_ARGS *args, char *message) {
  pthread_once(&once, init_once);
  if (args->arg_count != 0) { snprintf(message, 400, "sqlambda_config() takes no arguments"); return 1; }
  initid->maybe_null = 0;
  initid->max_length = 4096;
  initid->ptr = NULL;
  return 0;
}

void sqlambda_config_deinit(UDF_INIT *initid) { free(initid->ptr); initid->ptr = NULL; }

char *sqlambda_config(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length, char *is_null, char *error) {
  (void)args; (void)result; (void)is_null; (void)error;
  buf b = {0};
  curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  buf_str(&b, "{\"endpoint\": \"");
  buf_str(&b, cfg.endpoint[0] ? cfg.endpoint : "");
  buf_fmt(&b, "\", \"region\": \"%s\", \"credentials\": \"%s\", \"connect_timeout_ms\": %ld, "
              "\"read_timeout_ms\": %ld, \"max_attempts\": %d, \"build\": \"%s\", \"libcurl\": \"%s\", "
              "\"sql_errors\": %s, \"init_error\": \"%s\"}",
          cfg.region, cfg.env_creds ? "environment" : (cfg.imds_disabled ? "none" : "imds"), cfg.connect_ms,
          cfg.read_ms, cfg.max_attempts, SQLAMBDA_BUILD, v ? v->version : "?", sql_error ? "true" : "false",
          cfg.init_error);
  free(initid->ptr);
  initid->ptr = b.p;
  *length = b.len;
  return initid->ptr;
}
