// The no-op Node.js handler of the cold-start benchmark (scripts/bench --functions-only).
exports.handler = async () => ({ statusCode: 200, body: 'pong' });
