// Runs onFormSubmit.gs under Node with stand-ins for the Apps Script services
// it uses, and prints what it did as JSON. Driven by appsscript_test.go.
//
// Usage: node harness.js SCRIPT.gs SCENARIO.json
//   scenario.call "onboardSignature_": args are passed through, the result printed.
//   scenario.call "onFormSubmit": event, props, responses (one per fetch) and
//   now (unix seconds) describe the run; fetches and sleeps are recorded.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const vm = require('vm');

const [scriptPath, scenarioPath] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioPath, 'utf8'));
const fetches = [];
const sleeps = [];
let clockMs = (scenario.now || 0) * 1000;

// Apps Script hands back Java byte[]: numbers from -128 to 127.
function javaBytes(buf) {
  return Array.from(new Int8Array(buf.buffer, buf.byteOffset, buf.length));
}

const sandbox = {
  Utilities: {
    Charset: { UTF_8: 'UTF-8', US_ASCII: 'US-ASCII' },
    computeHmacSha256Signature(value, key, charset) {
      if (charset !== 'UTF-8') throw new Error('unexpected charset ' + charset);
      return javaBytes(crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(Buffer.from(value, 'utf8')).digest());
    },
    sleep(ms) {
      sleeps.push(ms);
      clockMs += ms;
    },
  },
  PropertiesService: {
    getScriptProperties: () => ({ getProperty: (k) => (scenario.props && k in scenario.props ? scenario.props[k] : null) }),
  },
  UrlFetchApp: {
    fetch(url, options) {
      fetches.push({ url, options, clock: Math.floor(clockMs / 1000) });
      const r = scenario.responses.shift();
      if (!r) throw new Error('more fetches than scripted responses');
      return {
        getResponseCode: () => r.status,
        getHeaders: () => r.headers || {},
        getContentText: () => r.body || '',
      };
    },
  },
};
vm.createContext(sandbox);
// The script reads the time through Date.now; Utilities.sleep advances it.
vm.runInContext('Date.now = function () { return __clock(); };', Object.assign(sandbox, { __clock: () => clockMs }));
vm.runInContext(fs.readFileSync(scriptPath, 'utf8'), sandbox, { filename: scriptPath });

function formEvent(spec) {
  if (!spec.response) return spec;
  const r = spec.response;
  return {
    response: {
      getId: () => r.id,
      getRespondentEmail: () => r.respondentEmail || '',
      getItemResponses: () => r.items.map((item) => ({
        getItem: () => ({ getTitle: () => item.title }),
        getResponse: () => item.response,
      })),
    },
  };
}

const out = { fetches, sleeps };
try {
  if (scenario.call === 'onboardSignature_') {
    out.result = sandbox.onboardSignature_(...scenario.args);
  } else if (scenario.call === 'onFormSubmit') {
    out.result = sandbox.onFormSubmit(formEvent(scenario.event));
  } else {
    throw new Error('unknown call ' + scenario.call);
  }
} catch (err) {
  out.error = String(err && err.message ? err.message : err);
}
process.stdout.write(JSON.stringify(out));
