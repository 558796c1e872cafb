import assert from "node:assert/strict";
import { sign, uriEncode } from "./sigv4.ts";
import { sha256Hex } from "../util/crypto.ts";

const creds = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const now = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));

Deno.test("sign() matches the AWS SigV4 test suite (get-vanilla)", async () => {
  const headers = await sign(
    {
      method: "GET",
      url: new URL("https://example.amazonaws.com/"),
      headers: {},
      payloadHash: await sha256Hex(""),
    },
    creds,
    "us-east-1",
    { service: "service", now },
  );
  assert.equal(
    headers["authorization"],
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
  );
  assert.equal(headers["x-amz-date"], "20150830T123600Z");
});

Deno.test("sign() matches the AWS SigV4 test suite (get-vanilla-query-order-key-case)", async () => {
  const headers = await sign(
    {
      method: "GET",
      url: new URL("https://example.amazonaws.com/?Param2=value2&Param1=value1"),
      headers: {},
      payloadHash: await sha256Hex(""),
    },
    creds,
    "us-east-1",
    { service: "service", now },
  );
  assert.match(
    headers["authorization"]!,
    /Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500$/,
  );
});

Deno.test("uriEncode() keeps unreserved characters and slashes in paths", () => {
  assert.equal(uriEncode("wal/0000000100.partial", true), "wal/0000000100.partial");
  assert.equal(uriEncode("a b+c", false), "a%20b%2Bc");
  assert.equal(uriEncode("a/b", false), "a%2Fb");
});
