/*
 * SigV4: AWS Signature Version 4 request signing with JDK classes only.
 *
 * Owns: the canonical request, string to sign, signing key and Authorization header for one
 * HTTP request, computed the same way botocore's SigV4Auth does (tests compare the two on
 * hundreds of generated requests).
 * Must not: send anything, read credentials from anywhere, or log. It receives the credentials
 * and the clock value from its caller, which keeps it pure and testable.
 *
 * Rules followed (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html):
 * - the path is taken as sent (already percent-encoded once), dot segments and empty segments
 *   removed, then percent-encoded again: every service except S3 signs the doubly encoded path;
 * - query parameters are decoded, re-encoded with the RFC 3986 unreserved set and sorted by key,
 *   then by value (repeated keys are kept); "k" without "=" signs as "k=";
 * - every header given is signed except the hop-by-hop ones botocore skips; "host" is derived
 *   from the URL (default ports left out); values are trimmed and inner whitespace collapsed.
 *
 * Load order: 3 (needs AwsCredentials).
 */
package sqlambda;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.SimpleDateFormat;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Date;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TimeZone;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class SigV4 {

    public static final String ALGORITHM = "AWS4-HMAC-SHA256";

    /** Headers botocore never signs: proxies and the HTTP stack may add or rewrite them. */
    private static final Set<String> UNSIGNED_HEADERS = new HashSet<String>(Arrays.asList(
            "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
            "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
            "authorization"));

    private static final char[] HEX = "0123456789abcdef".toCharArray();
    private static final char[] HEX_UPPER = "0123456789ABCDEF".toCharArray();

    private SigV4() {
    }

    /**
     * Signs one request.
     *
     * @param method       HTTP method, any case (signed upper-cased)
     * @param url          absolute URL exactly as it will be sent: path and query percent-encoded
     * @param headers      headers that will be sent and signed (names in any case); may be null
     * @param body         request body, or null for none
     * @param credentials  the credentials to sign with
     * @param region       e.g. "us-east-1"
     * @param service      signing name, e.g. "lambda"
     * @param epochMillis  signing time (callers pass System.currentTimeMillis())
     * @return the headers to send, in order: the given ones, then X-Amz-Date,
     *         X-Amz-Security-Token when there is a session token, and Authorization. "Host" is
     *         not in the map: HttpURLConnection writes it from the URL (the same value is signed).
     */
    public static Map<String, String> sign(String method, String url, Map<String, String> headers,
                                           byte[] body, AwsCredentials credentials, String region,
                                           String service, long epochMillis) {
        String amzDate = amzDate(epochMillis);
        Map<String, String> out = new LinkedHashMap<String, String>();
        if (headers != null) {
            for (Map.Entry<String, String> h : headers.entrySet()) {
                String lower = h.getKey().toLowerCase(Locale.ROOT);
                // The signer owns these three; a stale copy from a previous attempt is replaced.
                if (!lower.equals("x-amz-date") && !lower.equals("x-amz-security-token")
                        && !lower.equals("authorization")) {
                    out.put(h.getKey(), h.getValue());
                }
            }
        }
        out.put("X-Amz-Date", amzDate);
        if (credentials.getSessionToken() != null) {
            out.put("X-Amz-Security-Token", credentials.getSessionToken());
        }

        ParsedUrl parsed = ParsedUrl.parse(url);
        TreeMap<String, List<String>> signed = new TreeMap<String, List<String>>();
        for (Map.Entry<String, String> h : out.entrySet()) {
            String name = h.getKey().toLowerCase(Locale.ROOT);
            if (UNSIGNED_HEADERS.contains(name)) {
                continue;
            }
            List<String> values = signed.get(name);
            if (values == null) {
                values = new ArrayList<String>();
                signed.put(name, values);
            }
            values.add(trimAll(h.getValue()));
        }
        if (!signed.containsKey("host")) {
            signed.put("host", Collections.singletonList(parsed.hostHeader));
        }

        StringBuilder canonicalHeaders = new StringBuilder();
        StringBuilder signedHeaders = new StringBuilder();
        for (Map.Entry<String, List<String>> h : signed.entrySet()) {
            canonicalHeaders.append(h.getKey()).append(':');
            List<String> values = h.getValue();
            for (int i = 0; i < values.size(); i++) {
                if (i > 0) {
                    canonicalHeaders.append(',');
                }
                canonicalHeaders.append(values.get(i));
            }
            canonicalHeaders.append('\n');
            if (signedHeaders.length() > 0) {
                signedHeaders.append(';');
            }
            signedHeaders.append(h.getKey());
        }

        String canonicalRequest = method.toUpperCase(Locale.ROOT) + '\n'
                + canonicalPath(parsed.rawPath) + '\n'
                + canonicalQuery(parsed.rawQuery) + '\n'
                + canonicalHeaders + '\n'
                + signedHeaders + '\n'
                + hex(sha256(body == null ? new byte[0] : body));

        String date = amzDate.substring(0, 8);
        String scope = date + '/' + region + '/' + service + "/aws4_request";
        String stringToSign = ALGORITHM + '\n' + amzDate + '\n' + scope + '\n'
                + hex(sha256(canonicalRequest.getBytes(StandardCharsets.UTF_8)));
        byte[] key = signingKey(credentials.getSecretAccessKey(), date, region, service);
        String signature = hex(hmac(key, stringToSign));

        out.put("Authorization", ALGORITHM + " Credential=" + credentials.getAccessKeyId() + '/' + scope
                + ", SignedHeaders=" + signedHeaders + ", Signature=" + signature);
        return out;
    }

    /** yyyyMMdd'T'HHmmss'Z' in UTC. */
    public static String amzDate(long epochMillis) {
        // SimpleDateFormat is not thread-safe, so one per call (cheap next to an HTTP round trip).
        SimpleDateFormat f = new SimpleDateFormat("yyyyMMdd'T'HHmmss'Z'", Locale.ROOT);
        f.setTimeZone(TimeZone.getTimeZone("UTC"));
        return f.format(new Date(epochMillis));
    }

    // -- canonical forms -------------------------------------------------------------------

    /** Dot segments and empty segments removed (RFC 3986 5.2.4, as botocore does), then encoded. */
    static String canonicalPath(String rawPath) {
        String normalized = removeDotSegments(rawPath);
        if (normalized.isEmpty()) {
            normalized = "/";
        }
        return encode(normalized, true);
    }

    static String removeDotSegments(String url) {
        if (url == null || url.isEmpty()) {
            return "";
        }
        List<String> output = new ArrayList<String>();
        for (String segment : url.split("/", -1)) {
            if (segment.isEmpty() || segment.equals(".")) {
                continue;
            }
            if (segment.equals("..")) {
                if (!output.isEmpty()) {
                    output.remove(output.size() - 1);
                }
            } else {
                output.add(segment);
            }
        }
        StringBuilder sb = new StringBuilder();
        if (url.charAt(0) == '/') {
            sb.append('/');
        }
        for (int i = 0; i < output.size(); i++) {
            if (i > 0) {
                sb.append('/');
            }
            sb.append(output.get(i));
        }
        if (url.charAt(url.length() - 1) == '/' && !output.isEmpty()) {
            sb.append('/');
        }
        return sb.toString();
    }

    static String canonicalQuery(String rawQuery) {
        if (rawQuery == null || rawQuery.isEmpty()) {
            return "";
        }
        List<String[]> pairs = new ArrayList<String[]>();
        for (String pair : rawQuery.split("&", -1)) {
            int eq = pair.indexOf('=');
            String k = eq < 0 ? pair : pair.substring(0, eq);
            String v = eq < 0 ? "" : pair.substring(eq + 1);
            pairs.add(new String[] {encode(decode(k), false), encode(decode(v), false)});
        }
        // An anonymous class, not a lambda: plain Java 8 bytecode without invokedynamic keeps
        // the class loadable by every Oracle JVM release that runs Java 8 source.
        Collections.sort(pairs, new Comparator<String[]>() {
            @Override
            public int compare(String[] a, String[] b) {
                int c = a[0].compareTo(b[0]);
                return c != 0 ? c : a[1].compareTo(b[1]);
            }
        });
        StringBuilder sb = new StringBuilder();
        for (String[] p : pairs) {
            if (sb.length() > 0) {
                sb.append('&');
            }
            sb.append(p[0]).append('=').append(p[1]);
        }
        return sb.toString();
    }

    /** Percent-encodes UTF-8 bytes except RFC 3986 unreserved characters (and '/' if keepSlash). */
    public static String encode(String s, boolean keepSlash) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        StringBuilder sb = new StringBuilder(bytes.length + 16);
        for (byte b : bytes) {
            int c = b & 0xff;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/')) {
                sb.append((char) c);
            } else {
                sb.append('%').append(HEX_UPPER[c >> 4]).append(HEX_UPPER[c & 0xf]);
            }
        }
        return sb.toString();
    }

    /** Decodes %XX escapes (not '+': SigV4 query strings use %20 for space). */
    static String decode(String s) {
        if (s.indexOf('%') < 0) {
            return s;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        byte[] raw = s.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == '%' && i + 2 < raw.length && hexValue(raw[i + 1]) >= 0 && hexValue(raw[i + 2]) >= 0) {
                out.write(hexValue(raw[i + 1]) * 16 + hexValue(raw[i + 2]));
                i += 2;
            } else {
                out.write(raw[i]);
            }
        }
        return new String(out.toByteArray(), StandardCharsets.UTF_8);
    }

    private static int hexValue(byte b) {
        if (b >= '0' && b <= '9') {
            return b - '0';
        }
        if (b >= 'a' && b <= 'f') {
            return b - 'a' + 10;
        }
        if (b >= 'A' && b <= 'F') {
            return b - 'A' + 10;
        }
        return -1;
    }

    /** Trims and collapses runs of whitespace to one space, as Python's ' '.join(v.split()). */
    static String trimAll(String value) {
        if (value == null) {
            return "";
        }
        StringBuilder sb = new StringBuilder(value.length());
        boolean pendingSpace = false;
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (isPythonSpace(c)) {
                pendingSpace = sb.length() > 0;
            } else {
                if (pendingSpace) {
                    sb.append(' ');
                    pendingSpace = false;
                }
                sb.append(c);
            }
        }
        return sb.toString();
    }

    private static boolean isPythonSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c
                || (c >= 0x1c && c <= 0x1f) || c == 0x85 || Character.isSpaceChar(c);
    }

    // -- crypto ----------------------------------------------------------------------------

    private static final Map<String, byte[]> KEY_CACHE = new LinkedHashMap<String, byte[]>(8, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, byte[]> eldest) {
            return size() > 8;
        }
    };

    /** The derived key changes once a day per region/service, so it is cached (keyed by a hash). */
    static byte[] signingKey(String secret, String date, String region, String service) {
        String cacheKey = hex(sha256((secret + '\n' + date + '\n' + region + '\n' + service)
                .getBytes(StandardCharsets.UTF_8)));
        synchronized (KEY_CACHE) {
            byte[] cached = KEY_CACHE.get(cacheKey);
            if (cached != null) {
                return cached;
            }
        }
        byte[] k = hmac(("AWS4" + secret).getBytes(StandardCharsets.UTF_8), date);
        k = hmac(k, region);
        k = hmac(k, service);
        k = hmac(k, "aws4_request");
        synchronized (KEY_CACHE) {
            KEY_CACHE.put(cacheKey, k);
        }
        return k;
    }

    static byte[] hmac(byte[] key, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (Exception e) {
            throw new IllegalStateException("HmacSHA256 is unavailable in this JVM", e);
        }
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is unavailable in this JVM", e);
        }
    }

    static String hex(byte[] bytes) {
        char[] out = new char[bytes.length * 2];
        for (int i = 0; i < bytes.length; i++) {
            out[2 * i] = HEX[(bytes[i] >> 4) & 0xf];
            out[2 * i + 1] = HEX[bytes[i] & 0xf];
        }
        return new String(out);
    }

    // -- URL parsing -----------------------------------------------------------------------

    /**
     * Splits an absolute URL without java.net.URI, which rejects characters AWS accepts in
     * paths; what is signed must be exactly what is sent.
     */
    static final class ParsedUrl {
        final String scheme;
        final String hostHeader;
        final String rawPath;
        final String rawQuery;

        private ParsedUrl(String scheme, String hostHeader, String rawPath, String rawQuery) {
            this.scheme = scheme;
            this.hostHeader = hostHeader;
            this.rawPath = rawPath;
            this.rawQuery = rawQuery;
        }

        static ParsedUrl parse(String url) {
            int schemeEnd = url.indexOf("://");
            if (schemeEnd <= 0) {
                throw new IllegalArgumentException("not an absolute URL: " + url);
            }
            String scheme = url.substring(0, schemeEnd).toLowerCase(Locale.ROOT);
            String rest = url.substring(schemeEnd + 3);
            int fragment = rest.indexOf('#');
            if (fragment >= 0) {
                rest = rest.substring(0, fragment);
            }
            int authorityEnd = rest.length();
            for (int i = 0; i < rest.length(); i++) {
                char c = rest.charAt(i);
                if (c == '/' || c == '?') {
                    authorityEnd = i;
                    break;
                }
            }
            String authority = rest.substring(0, authorityEnd);
            String pathAndQuery = rest.substring(authorityEnd);
            int q = pathAndQuery.indexOf('?');
            String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
            String query = q < 0 ? "" : pathAndQuery.substring(q + 1);

            int at = authority.lastIndexOf('@');
            if (at >= 0) {
                authority = authority.substring(at + 1);
            }
            String host;
            int port = -1;
            if (authority.startsWith("[")) {
                int close = authority.indexOf(']');
                host = authority.substring(0, close + 1);
                if (close + 1 < authority.length() && authority.charAt(close + 1) == ':') {
                    port = parsePort(authority.substring(close + 2));
                }
            } else {
                int colon = authority.lastIndexOf(':');
                if (colon >= 0) {
                    host = authority.substring(0, colon);
                    port = parsePort(authority.substring(colon + 1));
                } else {
                    host = authority;
                }
            }
            host = host.toLowerCase(Locale.ROOT);
            int defaultPort = scheme.equals("https") ? 443 : scheme.equals("http") ? 80 : -2;
            String hostHeader = (port >= 0 && port != defaultPort) ? host + ':' + port : host;
            return new ParsedUrl(scheme, hostHeader, path, query);
        }

        private static int parsePort(String s) {
            if (s.isEmpty()) {
                return -1;
            }
            try {
                return Integer.parseInt(s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad port in URL: " + s);
            }
        }
    }
}
