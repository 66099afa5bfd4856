#!/usr/bin/env node
// nodexapp: a RIC xApp in plain JavaScript, over the northbound API (proto/ric/xapp/v1).
//
//   node xapp.js --connect 127.0.0.1:36422 [--reports 5] [--max-pct 80] [--timeout 30]
//                [--token-file FILE] [--name nodexapp]
//
// It attaches (Hello -> Welcome), asks for the PRB counters of every cell every 100 ms, grants
// credits as it handles report batches, and after --reports reports sends one SlicePrbQuota
// control (slice 1-000001 of the reporting cell, at most --max-pct % of its PRBs) with an id of
// its own. It prints one JSON line per event on stdout and exits 0 once
// the RIC acknowledged the control; any other outcome, a refusal, a broken stream or the
// timeout ends it with status 1 and one line on stderr saying why.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "..", "proto");
const METRICS = ["RRU.PrbUsedDl", "RRU.PrbAvailDl"];
const SLICE = "1-000001"; // the eMBB slice of the simulator's seeds
const WINDOW = 8; // reports the RIC may send before the next Credit

function fail(message) {
  process.stderr.write(`nodexapp: ${message}\n`);
  process.exit(1);
}

function emit(event, fields) {
  // JSON has no NaN: a missing measurement prints as null.
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

function options() {
  let args;
  try {
    args = parseArgs({
      options: {
        connect: { type: "string" },
        name: { type: "string", default: "nodexapp" },
        reports: { type: "string", default: "5" },
        "max-pct": { type: "string", default: "80" },
        timeout: { type: "string", default: "30" },
        "token-file": { type: "string" },
      },
    }).values;
  } catch (err) {
    fail(`bad arguments: ${err.message}`);
  }
  if (!args.connect) fail("--connect HOST:PORT is required (the RIC's [northbound] port)");
  if (!/^[^\s:]+:\d{1,5}$/.test(args.connect)) {
    fail(`--connect ${JSON.stringify(args.connect)} is not HOST:PORT`);
  }
  const reports = Number(args.reports);
  if (!Number.isInteger(reports) || reports < 1) {
    fail(`--reports ${JSON.stringify(args.reports)} is not a whole number of reports >= 1`);
  }
  // Only the type is checked here: the RIC judges the value (above 100: an "invalid" outcome).
  const maxPct = Number(args["max-pct"]);
  if (!Number.isInteger(maxPct) || maxPct < 0) {
    fail(`--max-pct ${JSON.stringify(args["max-pct"])} is not a whole percentage`);
  }
  const timeout = Number(args.timeout);
  if (!(timeout > 0) || !Number.isFinite(timeout)) {
    fail(`--timeout ${JSON.stringify(args.timeout)} is not a positive number of seconds`);
  }
  let token = "";
  if (args["token-file"] !== undefined) {
    try {
      token = fs.readFileSync(args["token-file"], "utf8").trim();
    } catch (err) {
      fail(`--token-file: cannot read ${args["token-file"]}: ${err.code || err.message}`);
    }
    if (!token) fail(`--token-file ${args["token-file"]} is empty`);
  }
  return { target: args.connect, name: args.name, reports, maxPct, timeout, token };
}

function loadService() {
  const definition = protoLoader.loadSync("ric/xapp/v1/xapp.proto", {
    includeDirs: [PROTO_ROOT], // xapp.proto imports ric/e2/v1/kpm.proto from there
    keepCase: true, // field names as in the .proto (first_seq, control_id, ...)
    longs: Number, // uint64 sequence numbers: exact up to 2^53, far beyond any session
    enums: String, // "OUTCOME_KIND_ACKNOWLEDGED" rather than 1
    defaults: true,
    oneofs: true, // msg.message names which field of the oneof is set
  });
  return grpc.loadPackageDefinition(definition).ric.xapp.v1.XAppService;
}

// The MeasurementMatrix as {entity: {metric: value}}: values are row-major, one row per
// entity, one column per metric.
function rows(matrix) {
  const out = {};
  const m = matrix.metric_names.length;
  matrix.entity_ids.forEach((entity, i) => {
    out[entity] = {};
    matrix.metric_names.forEach((metric, j) => {
      out[entity][metric] = matrix.values[i * m + j];
    });
  });
  return out;
}

function main() {
  const opts = options();
  const XAppService = loadService();
  const client = new XAppService(opts.target, grpc.credentials.createInsecure(), {
    // The Welcome tells the RIC's message cap only after the channel exists: accept its largest.
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
  });
  const metadata = new grpc.Metadata();
  if (opts.token) metadata.set("authorization", `Bearer ${opts.token}`);
  const call = client.Attach(metadata);

  let waitingFor = "the RIC's welcome";
  let received = 0;
  let controlId = null;
  let finished = false;

  const timer = setTimeout(
    () => fail(`timed out after ${opts.timeout} s waiting for ${waitingFor}`),
    opts.timeout * 1000,
  );

  function finish() {
    // Close our side; the RIC ends the stream, and keeps the session for its resume window.
    finished = true;
    clearTimeout(timer);
    call.end();
    setTimeout(() => process.exit(0), 3000).unref();
  }

  call.write({
    hello: {
      name: opts.name,
      version: "1.0.0",
      reports: [{ metrics: METRICS, period_ms: 100, per: "cell", cells: [] }],
      controls: ["slice_prb_quota"],
      credits: WINDOW,
      language: "node",
      pid: process.pid,
      queue_size: WINDOW,
    },
  });

  call.on("data", (msg) => {
    switch (msg.message) {
      case "welcome": {
        const w = msg.welcome;
        waitingFor = `${opts.reports} reports`;
        emit("attached", {
          ric_id: w.ric_id,
          credits: w.credits,
          nodes: w.nodes.map((n) => ({
            id: n.id,
            vendor: n.vendor,
            cells: n.cells.map((c) => c.id),
          })),
        });
        break;
      }
      case "subscription": {
        const s = msg.subscription;
        emit("subscription", { node: s.node, state: s.state, metrics: s.metrics, cause: s.cause });
        break;
      }
      case "reports": {
        const batch = msg.reports;
        if (batch.dropped > 0) emit("dropped", { count: batch.dropped });
        batch.reports.forEach((r, k) => {
          received += 1;
          emit("report", {
            seq: batch.first_seq + k,
            node: r.node,
            entity_kind: r.matrix.entity_kind,
            metrics: r.matrix.metric_names,
            cells: rows(r.matrix),
          });
          if (received === opts.reports && controlId === null) {
            // Any id unique among this xApp's controls; the RIC sends a repeated id only once.
            controlId = `${opts.name}-${process.pid}-1`;
            const cell = r.matrix.entity_ids[0];
            const quota = { cell_id: cell, slice: SLICE, max_pct: opts.maxPct };
            call.write({
              control: { control_id: controlId, action: { slice_prb_quota: quota }, timeout_s: 2 },
            });
            waitingFor = `the outcome of control ${controlId}`;
            emit("control", { control_id: controlId, node: r.node, slice_prb_quota: quota });
          }
        });
        if (batch.reports.length > 0) {
          // Handled them all: give the room back and let the RIC forget them.
          const last = batch.first_seq + batch.reports.length - 1;
          call.write({ credit: { reports: batch.reports.length, handled_seq: last } });
        }
        break;
      }
      case "outcome": {
        const o = msg.outcome;
        const kind = o.kind.replace("OUTCOME_KIND_", "").toLowerCase();
        emit("outcome", {
          control_id: o.control_id,
          kind,
          node: o.node,
          latency_s: o.latency_s,
          cause: o.cause,
          detail: o.detail,
        });
        if (o.control_id !== controlId) break;
        if (kind !== "acknowledged") {
          fail(`control ${o.control_id} ended ${kind}: ${o.detail || o.cause}`);
        }
        finish();
        break;
      }
      case "notice": {
        const n = msg.notice;
        process.stderr.write(`nodexapp: the RIC says (${n.level}): ${n.message}\n`);
        break;
      }
      case "stop":
        fail(`the RIC asked it to stop before the control ended: ${msg.stop.reason}`);
        break;
      default: // node events, A1 policies, ... are not this example's business
        break;
    }
  });

  call.on("error", (err) => {
    if (finished) return;
    if (err.code === grpc.status.UNAVAILABLE) {
      fail(`cannot reach the RIC at ${opts.target}: ${err.details}`);
    }
    fail(`the RIC at ${opts.target} ended the stream (${grpc.status[err.code]}): ${err.details}`);
  });
  call.on("end", () => {
    if (!finished) fail(`the RIC closed the stream while waiting for ${waitingFor}`);
    client.close();
  });
}

main();
