package timeback.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.camel.Exchange;
import org.apache.camel.LoggingLevel;
import org.apache.camel.Message;
import org.apache.camel.builder.RouteBuilder;
import org.apache.camel.component.http.HttpComponent;
import org.apache.camel.component.kafka.KafkaConstants;
import org.apache.camel.component.kafka.consumer.KafkaManualCommit;
import org.apache.camel.http.base.HttpOperationFailedException;
import org.apache.camel.main.Main;

/**
 * The S7 peer: what a Camel user runs to move pre-mapped Caliper JSON from a topic to the Partner
 * API, an Apache Camel 4.14 route {@code kafka -> http} (the engine of Camel's HTTP sink connector).
 *
 * <p>At-least-once with the relay's in-flight budget, as far as camel-kafka allows it:
 * <ul>
 *   <li>{@code autoCommitEnable=false}, {@code allowManualCommit=true}: an offset is committed
 *       only by the route, after the POSTs before it got their 2xx, with the default (sync)
 *       manual commit: {@code commitSync} of that offset + 1 at once. (The async factory only
 *       caches the offset until a rebalance or shutdown; and with auto-commit off, Camel never
 *       commits consumed positions itself, so records still buffered for a batch are not
 *       committed on stop.) The consumer thread waits in the route meanwhile, so the commit from
 *       the split's completing thread never overlaps a poll.</li>
 *   <li>{@code batching=true, maxPollRecords=N}: each poll (at most N records) is one exchange;
 *       {@code split().parallelProcessing()} on an N-thread pool POSTs them N at a time, and the
 *       last offset of each partition in the batch is committed when every POST is done. The
 *       streaming consumer would instead process one record at a time per consumer thread, so at
 *       most one POST per partition (4 here) in flight; batching is how Camel reaches 64. The
 *       price is a barrier per batch: the next one starts when its slowest POST is done. A batch
 *       short of N (the tail of the backlog) goes after an empty poll of {@code pollTimeoutMs}.</li>
 *   <li>A failed POST (5xx, I/O) is redelivered with exponential back-off until it succeeds, so
 *       a batch is never given up and no later commit can pass over an event that was not
 *       accepted. (Beneath it, camel-http's Apache HttpClient 5 retries a 503 once after 1 s by
 *       its default retry strategy: the attempts seen in the log are about 1.1 s apart.) A 4xx
 *       is logged and skipped (this route has no DLQ; the Go sink never rejects).</li>
 * </ul>
 *
 * <p>Arguments: {@code --brokers --topic --group --url [--in-flight 64]}; client credentials in
 * BENCH_CLIENT_ID / BENCH_CLIENT_SECRET. The token is fetched once (client_credentials, Basic).
 */
public final class CamelPeer extends RouteBuilder {
    // A batch short of maxPollRecords is dispatched only after an empty poll this long since it
    // began: the default (5 s) would hold the tail of a backlog, or a trickle, for seconds.
    private static final int POLL_TIMEOUT_MS = 100;
    private static final Pattern ACCESS_TOKEN = Pattern.compile("\"access_token\"\\s*:\\s*\"([^\"]+)\"");

    private final Map<String, String> args;
    private final String authorization;
    private final int inFlight;

    private CamelPeer(Map<String, String> args, String authorization) {
        this.args = args;
        this.authorization = authorization;
        this.inFlight = Integer.parseInt(args.getOrDefault("in-flight", "64"));
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        String token = fetchToken(required(args, "url"));
        Main main = new Main();
        main.configure().addRoutesBuilder(new CamelPeer(args, "Bearer " + token));
        main.run(); // until SIGTERM: Camel main's shutdown hook stops the route gracefully
    }

    @Override
    public void configure() {
        configureComponents();
        errorHandler(defaultErrorHandler()
                .maximumRedeliveries(-1) // until it is accepted: at-least-once
                .redeliveryDelay(100)
                .useExponentialBackOff()
                .maximumRedeliveryDelay(5_000)
                .retryAttemptedLogLevel(LoggingLevel.WARN));
        onException(HttpOperationFailedException.class)
                .onWhen(e -> clientError(e.getException(HttpOperationFailedException.class)))
                .handled(true)
                .log(LoggingLevel.ERROR, "rejected by the API, skipped: ${exception.message}");

        ExecutorService posters = Executors.newFixedThreadPool(inFlight);
        from(kafkaUri())
                .routeId("kafka-to-timeback")
                .split(body()).parallelProcessing().executorService(posters)
                    .process(this::toRequest)
                    .to(required(args, "url") + "/events/1.0")
                .end()
                .process(CamelPeer::commitBatch);
    }

    private void configureComponents() {
        HttpComponent http = getContext().getComponent("http", HttpComponent.class);
        http.setMaxTotalConnections(inFlight); // the pool's default is 20 per route
        http.setConnectionsPerRoute(inFlight);
    }

    private String kafkaUri() {
        return "kafka:" + required(args, "topic")
                + "?brokers=" + required(args, "brokers")
                + "&groupId=" + required(args, "group")
                + "&autoOffsetReset=earliest"
                + "&autoCommitEnable=false"
                + "&allowManualCommit=true"
                + "&batching=true"
                + "&maxPollRecords=" + inFlight
                + "&pollTimeoutMs=" + POLL_TIMEOUT_MS
                + "&valueDeserializer=org.apache.kafka.common.serialization.ByteArrayDeserializer";
    }

    /** A split part's body is the record's own exchange: its value becomes the POST's body. */
    private void toRequest(Exchange part) {
        Message record = part.getMessage().getBody(Exchange.class).getMessage();
        Message request = part.getMessage();
        request.setBody(record.getBody(byte[].class));
        request.removeHeaders("*");
        request.setHeader(Exchange.HTTP_METHOD, "POST");
        request.setHeader(Exchange.CONTENT_TYPE, "application/json");
        request.setHeader("Authorization", authorization);
    }

    /** Every POST of the batch got its 2xx (or was skipped as a 4xx): commit each partition's last. */
    @SuppressWarnings("unchecked")
    private static void commitBatch(Exchange batch) {
        Map<Integer, KafkaManualCommit> last = new LinkedHashMap<>();
        for (Exchange record : (List<Exchange>) batch.getMessage().getBody(List.class)) {
            Message message = record.getMessage();
            Integer partition = message.getHeader(KafkaConstants.PARTITION, Integer.class);
            last.put(partition, message.getHeader(KafkaConstants.MANUAL_COMMIT, KafkaManualCommit.class));
        }
        last.values().forEach(KafkaManualCommit::commit);
    }

    private static boolean clientError(HttpOperationFailedException failure) {
        return failure != null && failure.getStatusCode() >= 400 && failure.getStatusCode() < 500;
    }

    private static String fetchToken(String url) throws Exception {
        String id = requiredEnv("BENCH_CLIENT_ID");
        String secret = requiredEnv("BENCH_CLIENT_SECRET");
        String basic = Base64.getEncoder().encodeToString((id + ":" + secret).getBytes(StandardCharsets.UTF_8));
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/auth/1.0/token"))
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Basic " + basic)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString("grant_type=client_credentials"))
                .build();
        HttpResponse<String> reply = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        if (reply.statusCode() / 100 != 2) {
            throw new IllegalStateException("token request to " + url + " answered " + reply.statusCode());
        }
        Matcher token = ACCESS_TOKEN.matcher(reply.body());
        if (!token.find()) {
            throw new IllegalStateException("token reply from " + url + " has no access_token");
        }
        return token.group(1);
    }

    private static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            if (!argv[i].startsWith("--") || i + 1 == argv.length) {
                throw new IllegalArgumentException("expected --name value pairs, got: " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[++i]);
        }
        return args;
    }

    private static String required(Map<String, String> args, String name) {
        String value = args.get(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing argument --" + name);
        }
        return value;
    }

    private static String requiredEnv(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing environment variable " + name);
        }
        return value;
    }
}
