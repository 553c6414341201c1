// A Node.js learning app feeding timeback-relay with the stack's usual libraries and nothing of
// the relay's: kafkajs produces, @kafkajs/confluent-schema-registry registers the relay's .avsc
// files with a Confluent-compatible Schema Registry and writes Confluent framing
// (0x00 + 4-byte schema id + Avro body), which the relay decodes by asking the registry for the id.
//
//   KAFKA_BOOTSTRAP=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081/apis/ccompat/v6 \
//   TOPIC=timeback.activity node producer.js
//
// Environment:
//   KAFKA_BOOTSTRAP        broker list (default 127.0.0.1:9092)
//   TOPIC                  the relay's input topic (default timeback.activity)
//   SCHEMA_REGISTRY_URL    the registry's Confluent API base (required)
//   SCHEMA_REGISTRY_USER, SCHEMA_REGISTRY_PASSWORD   basic auth, when the registry wants it
//   SUBJECT_STRATEGY       record (default: subject = full record name, one subject per record
//                          type, the strategy for a topic carrying several types) or topic
//                          ("<topic>-value": one subject for the whole topic, so one record type
//                          per topic: the client sets BACKWARD on a new subject, and the registry
//                          then refuses a second record type as an incompatible version)
//   SUBJECT_COMPATIBILITY  the compatibility rule the subjects must have (default BACKWARD): the
//                          client sets it on a subject it creates and refuses to register under
//                          an existing subject whose rule differs
//   SCHEMA_DIR             the relay's schemas (default ../../schemas/activity)
//   STUDENTS               comma-separated student sourcedIds (default student-1)
//   PER_TYPE               records of each type per student (default 2)
// Prints one JSON line per record produced: {"type", "event_id", "student_id", "schema_id"}.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const env = process.env;
const TOPIC = env.TOPIC || 'timeback.activity';
const STRATEGY = env.SUBJECT_STRATEGY || 'record';
const SCHEMA_DIR = env.SCHEMA_DIR || path.join(__dirname, '..', '..', 'schemas', 'activity');
const STUDENTS = (env.STUDENTS || 'student-1').split(',').map((s) => s.trim()).filter(Boolean);
const PER_TYPE = Number(env.PER_TYPE || 2);
const COMPATIBILITY = (env.SUBJECT_COMPATIBILITY || 'BACKWARD').toUpperCase();

function fail(message) {
  console.error(`node-producer: ${message}`);
  process.exit(2);
}

// The newest version of each record type: <Type>.v<N>.avsc.
function latestSchemas(dir) {
  const newest = new Map();
  for (const file of fs.readdirSync(dir)) {
    const match = /^(\w+)\.v(\d+)\.avsc$/.exec(file);
    if (!match) continue;
    const [, type, version] = match;
    if (!newest.has(type) || newest.get(type).version < Number(version)) {
      newest.set(type, { version: Number(version), text: fs.readFileSync(path.join(dir, file), 'utf8') });
    }
  }
  if (newest.size === 0) fail(`no <Type>.v<N>.avsc files in ${dir} (set SCHEMA_DIR)`);
  return newest;
}

function subjectFor(schemaText) {
  const schema = JSON.parse(schemaText);
  if (STRATEGY === 'topic') return `${TOPIC}-value`;
  if (STRATEGY === 'record') return `${schema.namespace}.${schema.name}`;
  return fail(`SUBJECT_STRATEGY must be record or topic, not ${STRATEGY}`);
}

// One record of each type, the fields as the .avsc files describe them.
function recordOf(type, student, n) {
  const now = Date.now() - 60_000 + n * 1000; // a minute back: never ahead of the relay's clock
  const base = { event_id: crypto.randomUUID(), occurred_at: now, student_id: student };
  const activity = (kind) => ({ id: `${kind}/${student}/${n}`, name: `${kind} ${n}` });
  switch (type) {
    case 'XpEarned':
      return { ...base, activity: activity('lesson'), xp: 2.5, attempt: 1, course_id: 'course-1', subject: 'Math' };
    case 'QuestionAnswered':
      return {
        ...base, item: activity('item'), assessment: activity('quiz'), response: 'B', correct: n % 2 === 0,
        started_at: now - 20_000, ended_at: now, attempt: 1, course_id: 'course-1', subject: 'Math',
      };
    case 'AssessmentProgress':
      return {
        ...base, assessment: activity('quiz'), action: 'SUBMITTED', attempt: 1, started_at: now - 300_000,
        ended_at: now, total_questions: 10, correct_questions: 7, course_id: 'course-1', subject: 'Math',
      };
    case 'ResourceViewed':
      return { ...base, resource: activity('video'), course_id: 'course-1', subject: 'Math' };
    case 'SessionChanged':
      return { ...base, session_id: `session-${student}-${n}`, action: n % 2 === 0 ? 'LOGGED_IN' : 'LOGGED_OUT' };
    default:
      return fail(`no sample record for ${type}: add one to recordOf()`);
  }
}

async function main() {
  if (!env.SCHEMA_REGISTRY_URL) fail('SCHEMA_REGISTRY_URL is required (e.g. http://127.0.0.1:8081/apis/ccompat/v6)');
  const auth = env.SCHEMA_REGISTRY_USER
    ? { username: env.SCHEMA_REGISTRY_USER, password: env.SCHEMA_REGISTRY_PASSWORD || '' }
    : undefined;
  const registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL, auth });

  const ids = new Map();
  for (const [type, { text }] of latestSchemas(SCHEMA_DIR)) {
    const subject = subjectFor(text);
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: text },
      { subject, compatibility: COMPATIBILITY },
    );
    ids.set(type, id);
    console.error(`node-producer: ${type} registered under ${subject} as schema id ${id}`);
  }

  const kafka = new Kafka({
    clientId: 'timeback-node-producer',
    brokers: (env.KAFKA_BOOTSTRAP || '127.0.0.1:9092').split(','),
    logLevel: logLevel.WARN,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const messages = [];
    const produced = [];
    for (const student of STUDENTS) {
      for (let n = 0; n < PER_TYPE; n += 1) {
        for (const [type, id] of ids) {
          const record = recordOf(type, student, n);
          // Keyed by student: one student's records stay in order on one partition.
          messages.push({ key: student, value: await registry.encode(id, record) });
          produced.push({ type, event_id: record.event_id, student_id: student, schema_id: id });
        }
      }
    }
    await producer.send({ topic: TOPIC, acks: -1, messages });
    for (const line of produced) console.log(JSON.stringify(line));
    console.error(`node-producer: ${produced.length} records produced to ${TOPIC}`);
  } finally {
    await producer.disconnect();
  }
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
