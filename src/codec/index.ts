/** The Gearman codec: binary packets both ways and gearmand's admin text replies. No sockets here. */
export * from './constants.js';
export * from './parser.js';
export * from './encoder.js';
export * from './admin.js';
