/*
 * InvokeProbe (test only): drives sqlambda.LambdaInvoke and sqlambda.CredentialChain on the
 * real JVM and prints one JSON object per line for pytest to read.
 *
 *   java InvokeProbe creds N              resolve credentials N times with one chain
 *   java InvokeProbe sync FN              invoke_sync, payload read from stdin
 *   java InvokeProbe sync_detail FN       the Java API invoke(): also prints attempts and request id
 *   java InvokeProbe async FN             invoke_async, payload read from stdin
 *   java InvokeProbe sync_original FN     invoke_sync_original (the original awslambda_fn's errors):
 *                                         a plain java.lang.Exception prints {"ok":false,"class","message"}
 *   java InvokeProbe sync_clob FN         invoke_sync_clob with SerialClob in and out
 *   java InvokeProbe bench FN N           N sequential invoke_sync calls after a warm-up
 *   java InvokeProbe bench_loop FN        warm up, print "ready", then for each stdin line N run
 *                                         N sequential invoke_sync calls and print the seconds taken
 *                                         (lets a benchmark interleave Java and boto3 in one window)
 *
 * Configuration: the probe calls the configure_* methods, as the runtime package does inside Oracle,
 * with the values of its own -Dprobe.* properties (probe.region, probe.endpointUrl,
 * probe.connectTimeoutMs, probe.readTimeoutMs, probe.maxAttempts, probe.retryBaseDelayMs,
 * probe.retryMaxDelayMs); -Dprobe.source=default|environment|imds|provider calls configure_credentials_source; -Dprobe.provider=ClassName calls configure_credentials_provider(ClassName).
 * Credentials come from the process environment (AWS_ACCESS_KEY_ID, ...), the DB server's inside Oracle.
 * LambdaInvoke itself reads no system property: a test sets attacker values for the ones it used to.
 * Output lines: {"ok":true,...} or {"ok":false,"class":...,"kind":...,"errorType":...,
 * "errorMessage":...,"message":...,"status":...,"attempts":...}.
 */
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Clob;
import java.sql.SQLException;
import javax.sql.rowset.serial.SerialClob;

import sqlambda.AwsCredentials;
import sqlambda.ClobFactory;
import sqlambda.CredentialChain;
import sqlambda.LambdaException;
import sqlambda.LambdaInvoke;

public final class InvokeProbe {

    private static PrintStream out;

    public static void main(String[] args) throws Exception {
        out = new PrintStream(System.out, true, "UTF-8");
        String cmd = args[0];
        try {
            String source = System.getProperty("probe.source");
            if (source != null) {
                LambdaInvoke.configure_credentials_source(source);
            }
            String provider = System.getProperty("probe.provider");
            if (provider != null) {
                LambdaInvoke.configure_credentials_provider(provider);
            }
            if (System.getProperty("probe.region") != null || System.getProperty("probe.endpointUrl") != null) {
                LambdaInvoke.configure(System.getProperty("probe.region"), System.getProperty("probe.endpointUrl"));
            }
            LambdaInvoke.configure_timeouts(intProp("probe.connectTimeoutMs"), intProp("probe.readTimeoutMs"));
            LambdaInvoke.configure_retries(intProp("probe.maxAttempts"), intProp("probe.retryBaseDelayMs"),
                    intProp("probe.retryMaxDelayMs"));
            if (cmd.equals("creds")) {
                CredentialChain chain = new CredentialChain();
                int n = Integer.parseInt(args[1]);
                for (int i = 0; i < n; i++) {
                    try {
                        AwsCredentials c = chain.resolve();
                        out.println("{\"ok\":true,\"source\":" + q(c.getSource()) + ",\"akid\":" + q(c.getAccessKeyId())
                                + ",\"secret\":" + q(c.getSecretAccessKey()) + ",\"token\":" + q(c.getSessionToken())
                                + ",\"expires\":" + c.getExpiresAtMillis() + "}");
                    } catch (LambdaException e) {
                        printError(e);
                    }
                }
            } else if (cmd.equals("sync")) {
                String result = LambdaInvoke.invoke_sync(args[1], stdin());
                out.println("{\"ok\":true,\"result\":" + q(result) + "}");
            } else if (cmd.equals("sync_detail")) {
                LambdaInvoke.Result r = LambdaInvoke.invoke(args[1], stdin().getBytes(StandardCharsets.UTF_8), false);
                out.println("{\"ok\":true,\"status\":" + r.status + ",\"attempts\":" + r.attempts
                        + ",\"requestId\":" + q(r.requestId) + ",\"providerCalls\":" + ProbeCredentialsProvider.calls
                        + ",\"result\":" + q(new String(r.body, StandardCharsets.UTF_8)) + "}");
            } else if (cmd.equals("sync_original")) {
                try {
                    String result = LambdaInvoke.invoke_sync_original(args[1], stdin());
                    out.println("{\"ok\":true,\"result\":" + q(result) + "}");
                } catch (LambdaException e) {
                    throw e;
                } catch (Exception e) {
                    out.println("{\"ok\":false,\"class\":" + q(e.getClass().getName()) + ",\"message\":" + q(e.getMessage())
                            + ",\"toString\":" + q(e.toString()) + "}");
                }
            } else if (cmd.equals("doctor")) {
                // what the runtime package's credentials_check / endpoint_check answer for `sqlambda doctor`
                out.println("{\"ok\":true,\"credentials\":" + q(LambdaInvoke.credentials_check())
                        + ",\"endpoint\":" + q(LambdaInvoke.endpoint_check()) + "}");
            } else if (cmd.equals("reset_state")) {
                // what a Java session reset does to the client's state, as the runtime package sees it
                int before = LambdaInvoke.is_configured();
                LambdaInvoke.reset();
                out.println("{\"ok\":true,\"before\":" + before + ",\"after\":" + LambdaInvoke.is_configured() + "}");
            } else if (cmd.equals("async")) {
                int status = LambdaInvoke.invoke_async(args[1], stdin());
                out.println("{\"ok\":true,\"status\":" + status + "}");
            } else if (cmd.equals("sync_clob")) {
                LambdaInvoke.setClobFactory(new ClobFactory() {
                    @Override
                    public Clob createClob(String content) throws SQLException {
                        return new SerialClob(content.toCharArray());
                    }
                });
                Clob in = new SerialClob(stdin().toCharArray());
                Clob result = LambdaInvoke.invoke_sync_clob(args[1], in);
                out.println("{\"ok\":true,\"clob_class\":" + q(result.getClass().getName()) + ",\"length\":"
                        + result.length() + ",\"result\":" + q(result.getSubString(1, (int) result.length())) + "}");
            } else if (cmd.equals("bench")) {
                int n = Integer.parseInt(args[2]);
                String payload = "{\"bench\": true}";
                for (int i = 0; i < 20; i++) {
                    LambdaInvoke.invoke_sync(args[1], payload); // warm up the JIT and the connection
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    LambdaInvoke.invoke_sync(args[1], payload);
                }
                long elapsed = System.nanoTime() - t0;
                out.println("{\"ok\":true,\"calls\":" + n + ",\"seconds\":" + (elapsed / 1e9) + "}");
            } else if (cmd.equals("bench_loop")) {
                String payload = "{\"bench\": true}";
                for (int i = 0; i < 200; i++) {
                    LambdaInvoke.invoke_sync(args[1], payload); // warm up the JIT and the connection
                }
                out.println("ready");
                java.io.BufferedReader in = new java.io.BufferedReader(
                        new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8));
                String line;
                while ((line = in.readLine()) != null && !line.trim().isEmpty()) {
                    int n = Integer.parseInt(line.trim());
                    long t0 = System.nanoTime();
                    for (int i = 0; i < n; i++) {
                        LambdaInvoke.invoke_sync(args[1], payload);
                    }
                    out.println((System.nanoTime() - t0) / 1e9);
                }
            } else {
                throw new IllegalArgumentException("unknown command " + cmd);
            }
        } catch (LambdaException e) {
            printError(e);
        }
    }

    private static int intProp(String name) {
        String v = System.getProperty(name);
        return v == null ? 0 : Integer.parseInt(v.trim());
    }

    private static void printError(LambdaException e) {
        out.println("{\"ok\":false,\"class\":" + q(e.getClass().getName()) + ",\"kind\":" + q(e.getKind())
                + ",\"errorType\":" + q(e.getErrorType()) + ",\"errorMessage\":" + q(e.getErrorMessage())
                + ",\"message\":" + q(e.getMessage()) + ",\"status\":" + e.getStatusCode()
                + ",\"attempts\":" + e.getAttempts() + "}");
    }

    private static String stdin() throws Exception {
        InputStream in = System.in;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] b = new byte[8192];
        int n;
        while ((n = in.read(b)) >= 0) {
            buf.write(b, 0, n);
        }
        return new String(buf.toByteArray(), StandardCharsets.UTF_8);
    }

    /** A JSON string literal (or null). */
    static String q(String s) {
        if (s == null) {
            return "null";
        }
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}
