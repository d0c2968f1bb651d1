/**
 * onboard for Google Forms: sends each form response to onboard's
 * ProvisionHTTP function as a signed request.
 *
 * Set-up (docs/triggers.md, "Google Forms / Apps Script set-up"):
 *  1. In the form: Extensions > Apps Script, paste this file.
 *  2. Project Settings > Script Properties:
 *       ONBOARD_URL             the ProvisionHTTP URL, e.g. https://REGION-PROJECT.cloudfunctions.net/ProvisionHTTP
 *       ONBOARD_WEBHOOK_SECRET  the function's ONBOARD_WEBHOOK_SECRET
 *  3. Adjust QUESTION_FIELDS to your question titles.
 *  4. Run installTrigger once and grant the permissions it asks for.
 *
 * The secret stays in Script Properties and only its HMAC leaves the script:
 * a request carries Onboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
 * of "<t>.<body>">, which the server accepts once, within 5 minutes.
 */

// Question title -> request field. "attributes.NAME" fills the user
// attribute NAME (the profile must list it in attributes_allowed). Questions
// not listed here are not sent: onboard refuses unknown fields.
var QUESTION_FIELDS = {
  'Email address': 'email',
  'Full name': 'name',
  'Region': 'attributes.region'
};

// 409: the same response is being processed; 429/503: a target is busy or
// down; 500/504 also come from Google's front end while an instance starts.
// onboard is idempotent, so resending is always safe.
var RETRY_STATUSES = [409, 429, 500, 503, 504];
var MAX_ATTEMPTS = 5;
// Four waits of at most a minute stay well inside a trigger's six minutes.
var MAX_WAIT_SECONDS = 60;

/** The installable trigger: runs on every form submission. */
function onFormSubmit(e) {
  var props = PropertiesService.getScriptProperties();
  var url = props.getProperty('ONBOARD_URL');
  var secret = props.getProperty('ONBOARD_WEBHOOK_SECRET');
  if (!url || !secret) {
    throw new Error('Set ONBOARD_URL and ONBOARD_WEBHOOK_SECRET in Project Settings > Script Properties');
  }
  return sendToOnboard_(url, secret, onboardRequest_(e));
}

/** Creates the onFormSubmit trigger for this form, replacing an older one. */
function installTrigger() {
  ScriptApp.getProjectTriggers().forEach(function (trigger) {
    if (trigger.getHandlerFunction() === 'onFormSubmit') {
      ScriptApp.deleteTrigger(trigger);
    }
  });
  ScriptApp.newTrigger('onFormSubmit').forForm(FormApp.getActiveForm()).onFormSubmit().create();
}

/** Maps a form-submit event to onboard's request schema. */
function onboardRequest_(e) {
  var request = {};
  var answers = formAnswers_(e);
  Object.keys(QUESTION_FIELDS).forEach(function (title) {
    var value = answers[title];
    if (value === undefined || value === '') {
      return;
    }
    var field = QUESTION_FIELDS[title];
    if (field.indexOf('attributes.') === 0) {
      request.attributes = request.attributes || {};
      request.attributes[field.slice('attributes.'.length)] = value;
    } else {
      request[field] = value;
    }
  });
  if (e.response) {
    // A verified respondent address beats whatever was typed into a question.
    var verified = e.response.getRespondentEmail();
    if (verified) {
      request.email = verified;
    }
    // One key per response: a resend of this response is recognised as such.
    request.idempotency_key = 'gform-' + e.response.getId();
  }
  return request;
}

/** Question title -> answer, from a form trigger or a response-sheet trigger. */
function formAnswers_(e) {
  var answers = {};
  if (e.response) {
    e.response.getItemResponses().forEach(function (itemResponse) {
      var value = itemResponse.getResponse();
      answers[itemResponse.getItem().getTitle()] = Array.isArray(value) ? value.join(', ') : String(value);
    });
  } else if (e.namedValues) {
    Object.keys(e.namedValues).forEach(function (title) {
      answers[title] = e.namedValues[title].join(', ');
    });
  }
  return answers;
}

/** POSTs the request, retrying what onboard says is safe to resend. */
function sendToOnboard_(url, secret, request) {
  var body = asciiJson_(request);
  for (var attempt = 1; ; attempt++) {
    // Signed anew for each attempt: the server refuses a signature it has seen.
    var response = UrlFetchApp.fetch(url, {
      method: 'post',
      contentType: 'application/json',
      payload: body,
      headers: { 'Onboard-Signature': onboardSignature_(secret, Math.floor(Date.now() / 1000), body) },
      muteHttpExceptions: true,
      followRedirects: false
    });
    var status = response.getResponseCode();
    if (status >= 200 && status < 300) {
      return JSON.parse(response.getContentText());
    }
    if (RETRY_STATUSES.indexOf(status) < 0 || attempt >= MAX_ATTEMPTS) {
      // A failed execution is listed under Executions and mailed to the
      // trigger's owner; the body names the field or target at fault.
      throw new Error('onboard answered ' + status + ' after ' + attempt + ' attempt(s): ' + response.getContentText());
    }
    Utilities.sleep(retryDelaySeconds_(response, attempt) * 1000);
  }
}

/**
 * JSON with every non-ASCII character escaped, so the bytes sent are the
 * bytes signed whatever charset UrlFetchApp encodes the payload with.
 */
function asciiJson_(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, function (c) {
    return '\\u' + ('000' + c.charCodeAt(0).toString(16)).slice(-4);
  });
}

/** The Onboard-Signature header value for body at unix time t. */
function onboardSignature_(secret, t, body) {
  var mac = Utilities.computeHmacSha256Signature(t + '.' + body, secret, Utilities.Charset.UTF_8);
  return 't=' + t + ',v1=' + hex_(mac);
}

/** Apps Script bytes are Java's: signed, -128..127. */
function hex_(bytes) {
  return bytes.map(function (b) {
    return ('0' + (b & 0xff).toString(16)).slice(-2);
  }).join('');
}

/** Seconds to wait: Retry-After when given in seconds, else 2, 4, 8, ... */
function retryDelaySeconds_(response, attempt) {
  var headers = response.getHeaders();
  var retryAfter;
  Object.keys(headers).forEach(function (name) {
    if (name.toLowerCase() === 'retry-after') {
      retryAfter = headers[name];
    }
  });
  var seconds = /^\s*\d+\s*$/.test(String(retryAfter)) ? parseInt(retryAfter, 10) : Math.pow(2, attempt);
  // At least a second, so the next attempt's timestamp, and signature, differ.
  return Math.min(Math.max(seconds, 1), MAX_WAIT_SECONDS);
}
