<?php
// A job endpoint for driveshaft in plain PHP (7.0 or newer), behind any web server, or for a try:
//
//   php -S 127.0.0.1:8080 examples/endpoint.php
//
// driveshaft POSTs one job per request and reads the JSON answer (docs/http-contract.md):
//   {"gearman_ret": 0, "response_string": "..."}   success: the client gets response_string
//   {"gearman_ret": 1, "response_string": "..."}   failure (any integer other than 0 and 14)
//
// Both request formats are read: JSON, driveshaft's default, and multipart/form-data (a pool with
// "request_format": "multipart", which is what the original C++ Driveshaft sent: the fields are in $_POST).
//
// Signed requests (docs/security.md): with SIGNING_SECRETS set to the pool's whsec_ secrets
// (separated by spaces), every POST must carry a valid Standard Webhooks signature made within the last
// 5 minutes, or it is answered 401. The signature covers the raw body, which PHP hides for
// multipart/form-data requests: sign JSON pools, or set enable_post_data_reading=Off for multipart ones.
//
//   SIGNING_SECRETS="$(cat /etc/driveshaft/regular.whsec)" php -S 127.0.0.1:8080 examples/endpoint.php

function answer($gearmanRet, $responseString)
{
    header('Content-Type: application/json');
    echo json_encode(['gearman_ret' => $gearmanRet, 'response_string' => (string) $responseString]);
    exit;
}

/** The workload as a JSON array of numbers, or a failed job. */
function numbers($workload)
{
    $numbers = json_decode($workload, true);
    if (!is_array($numbers) || array_filter($numbers, 'is_numeric') !== $numbers) {
        answer(1, 'workload must be a JSON array of numbers, e.g. [1,2]');
    }
    return $numbers;
}

/** Answers 401 unless the request carries a valid signature (or no secret is configured). */
function verifySignature($body)
{
    $secrets = preg_split('/\s+/', trim((string) getenv('SIGNING_SECRETS')), -1, PREG_SPLIT_NO_EMPTY);
    if (!$secrets) {
        return;
    }
    $refuse = function ($why) {
        http_response_code(401);
        exit("$why\n");
    };
    $id = isset($_SERVER['HTTP_WEBHOOK_ID']) ? $_SERVER['HTTP_WEBHOOK_ID'] : '';
    $timestamp = isset($_SERVER['HTTP_WEBHOOK_TIMESTAMP']) ? $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] : '';
    $signatures = explode(' ', isset($_SERVER['HTTP_WEBHOOK_SIGNATURE']) ? $_SERVER['HTTP_WEBHOOK_SIGNATURE'] : '');
    if ($id === '' || !ctype_digit($timestamp) || abs(time() - (int) $timestamp) > 300) {
        $refuse('unsigned, or webhook-timestamp not within 5 minutes');
    }
    foreach ($secrets as $secret) {
        $key = base64_decode(preg_replace('/^whsec_/', '', $secret));
        $expected = 'v1,' . base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
        foreach ($signatures as $signature) {
            if (hash_equals($expected, $signature)) {
                return;
            }
        }
    }
    $refuse('no signature matches the configured secrets');
}

if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    http_response_code(405);
    exit("POST a job here\n");
}
verifySignature(file_get_contents('php://input'));

if (strpos($_SERVER['CONTENT_TYPE'] ?? '', 'multipart/form-data') === 0) {
    $job = $_POST;
} else {
    $job = json_decode(file_get_contents('php://input'), true);
    if (!is_array($job)) {
        // Any status but 200 makes driveshaft fail the job and log the status.
        http_response_code(400);
        exit("not a JSON job\n");
    }
    // A field whose bytes are not valid UTF-8 arrives base64-encoded, with "<field>_encoding": "base64"
    // (docs/http-contract.md#exact-bytes); PHP strings are bytes, so decoding gives them back exactly.
    foreach (['function_name', 'unique', 'workload'] as $field) {
        if (($job[$field . '_encoding'] ?? '') === 'base64') {
            $job[$field] = base64_decode($job[$field]);
        }
    }
}
$function = $job['function_name'] ?? '';
$workload = $job['workload'] ?? '';
// Also available: $job['job_handle'] ("H:host:42") and $job['unique'] (the client's unique id, its exact
// bytes: the idempotency key).

switch ($function) {
    case 'Sum':
        answer(0, array_sum(numbers($workload)));
    case 'Sum2':
        answer(0, array_sum(array_map(function ($n) { return $n * $n; }, numbers($workload))));
    case 'Sum3':
        answer(0, array_sum(array_map(function ($n) { return $n * $n * $n; }, numbers($workload))));
    case 'Fail':
        answer(1, 'failed on purpose');
    default:
        answer(1, 'unknown function ' . $function);
}
