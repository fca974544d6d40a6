/*
 * SigV4Harness (test only): signs requests read from stdin with sqlambda.SigV4 and prints one
 * Authorization header per line, so a pytest can compare hundreds of signatures with botocore's
 * in one JVM run.
 *
 * Input, one request per line: ten base64 (UTF-8) fields separated by single spaces:
 *   method url region service accessKeyId secretKey sessionToken epochMillis headers body
 * where headers is "name\nvalue\n" repeated and sessionToken is empty for none. Base64 keeps the
 * format trivial to parse with the JDK alone, whatever bytes a field holds.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

import sqlambda.AwsCredentials;
import sqlambda.SigV4;

public final class SigV4Harness {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split(" ", -1);
            if (f.length != 10) {
                throw new IllegalArgumentException("expected 10 fields, got " + f.length);
            }
            String method = text(f[0]);
            String url = text(f[1]);
            String region = text(f[2]);
            String service = text(f[3]);
            String token = text(f[6]);
            AwsCredentials creds = new AwsCredentials(text(f[4]), text(f[5]), token.isEmpty() ? null : token);
            long epochMillis = Long.parseLong(text(f[7]));
            Map<String, String> headers = new LinkedHashMap<String, String>();
            String[] h = text(f[8]).split("\n", -1);
            for (int i = 0; i + 1 < h.length; i += 2) {
                headers.put(h[i], h[i + 1]);
            }
            byte[] body = Base64.getDecoder().decode(f[9]);
            Map<String, String> signed = SigV4.sign(method, url, headers, body, creds, region, service, epochMillis);
            out.println(signed.get("Authorization"));
        }
        out.flush();
    }

    private static String text(String b64) {
        return new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }
}
