export { connectRedis, parseQueueUrl, redisOptions } from './connection.ts';
export type { QueueLocation } from './connection.ts';
export { QUEUE_ERROR_CODES } from './errors.ts';
export type { QueueErrorCode } from './errors.ts';
