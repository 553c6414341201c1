package timeback.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.camel.CamelContext;
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
 * <p>Arguments: {@code --brokers [--topic --group --url] [--in-flight 64] [--control stdin]};
 * client credentials in BENCH_CLIENT_ID / BENCH_CLIENT_SECRET. With {@code --topic}, that drain
 * starts at once; with {@code --control stdin}, drains are started and stopped by commands on
 * stdin (see {@link #control}), so that one JVM, warmed by a first drain, measures the next ones.
 * The token is fetched once per API URL (client_credentials, Basic).
 */
public final class CamelPeer {
    // A batch short of maxPollRecords is dispatched only after an empty poll this long since it
    // began: the default (5 s) would hold the tail of a backlog, or a trickle, for seconds.
    private static final int POLL_TIMEOUT_MS = 100;
    private static final Pattern ACCESS_TOKEN = Pattern.compile("\"access_token\"\\s*:\\s*\"([^\"]+)\"");

    private final String brokers;
    private final int inFlight;
    private final Map<String, String> authorizations = new HashMap<>(); // by API base URL
    private int drains;
    private String running; // the route of the drain under way, null when idle
    private ExecutorService runningPosters;

    private CamelPeer(String brokers, int inFlight) {
        this.brokers = brokers;
        this.inFlight = inFlight;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        CamelPeer peer = new CamelPeer(required(args, "brokers"),
                Integer.parseInt(args.getOrDefault("in-flight", "64")));
        Main main = new Main();
        if (args.containsKey("topic")) {
            main.configure().addRoutesBuilder(
                    peer.drain(required(args, "topic"), required(args, "group"), required(args, "url")));
        }
        if ("stdin".equals(args.get("control"))) {
            Thread control = new Thread(() -> peer.control(main), "control");
            control.setDaemon(true);
            control.start();
        }
        main.run(); // until SIGTERM: Camel main's shutdown hook stops the route gracefully
    }

    /**
     * Commands on stdin, one a line, so that one warmed JVM drains one backlog after another
     * (the benchmark's warm-up drain, then the measured ones): {@code drain <topic> <group> <url>}
     * stops the running drain's route and starts a new one; {@code stop} only stops it.
     */
    private void control(Main main) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            CamelContext context = started(main);
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                String[] words = line.trim().split("\\s+");
                try {
                    stopRunning(context);
                    if (words[0].equals("drain") && words.length == 4) {
                        context.addRoutes(drain(words[1], words[2], words[3]));
                    } else if (!words[0].equals("stop")) {
                        throw new IllegalArgumentException("expected drain <topic> <group> <url> or stop");
                    }
                    System.out.println("control: done: " + line);
                } catch (Exception failure) {
                    System.out.println("control: failed: " + line + ": " + failure);
                }
            }
        } catch (Exception failure) {
            System.out.println("control: stdin closed: " + failure);
        }
    }

    private static CamelContext started(Main main) throws InterruptedException {
        while (main.getCamelContext() == null || !main.getCamelContext().isStarted()) {
            Thread.sleep(20);
        }
        return main.getCamelContext();
    }

    private synchronized void stopRunning(CamelContext context) throws Exception {
        if (running != null) {
            context.getRouteController().stopRoute(running);
            context.removeRoute(running);
            runningPosters.shutdown();
            running = null;
        }
    }

    /** The route of one drain of {@code topic} by consumer group {@code group} to {@code url}. */
    private synchronized RouteBuilder drain(String topic, String group, String url) throws Exception {
        String authorization = authorizations.get(url);
        if (authorization == null) {
            authorization = "Bearer " + fetchToken(url);
            authorizations.put(url, authorization);
        }
        running = "kafka-to-timeback-" + ++drains;
        runningPosters = Executors.newFixedThreadPool(inFlight);
        return new Route(running, kafkaUri(topic, group), url + "/events/1.0", authorization,
                runningPosters, inFlight);
    }

    private String kafkaUri(String topic, String group) {
        return "kafka:" + topic
                + "?brokers=" + brokers
                + "&groupId=" + group
                + "&autoOffsetReset=earliest"
                + "&autoCommitEnable=false"
                + "&allowManualCommit=true"
                + "&batching=true"
                + "&maxPollRecords=" + inFlight
                + "&pollTimeoutMs=" + POLL_TIMEOUT_MS
                + "&valueDeserializer=org.apache.kafka.common.serialization.ByteArrayDeserializer";
    }

    /** The route itself: kafka (batches of in-flight records) -> parallel POSTs -> commit. */
    private static final class Route extends RouteBuilder {
        private final String id;
        private final String from;
        private final String to;
        private final String authorization;
        private final ExecutorService posters;
        private final int inFlight;

        Route(String id, String from, String to, String authorization, ExecutorService posters, int inFlight) {
            this.id = id;
            this.from = from;
            this.to = to;
            this.authorization = authorization;
            this.posters = posters;
            this.inFlight = inFlight;
        }

        @Override
        public void configure() {
            HttpComponent http = getContext().getComponent("http", HttpComponent.class);
            http.setMaxTotalConnections(inFlight); // the pool's default is 20 per route
            http.setConnectionsPerRoute(inFlight);
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
            from(from)
                    .routeId(id)
                    .split(body()).parallelProcessing().executorService(posters)
                        .process(this::toRequest)
                        .to(to)
                    .end()
                    .process(CamelPeer::commitBatch);
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
