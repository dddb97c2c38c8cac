// Your HTTPS server, with certkeeper's identity and API (`npm run build` first, then):
//   DATA_DIR=./data PORT=8443 node examples/embed.mjs
import Fastify from 'fastify';
import { certkeeperApi, MAX_PARAM_LENGTH, openCertkeeper } from 'certkeeper';

const ck = await openCertkeeper({
  dataDir: process.env.DATA_DIR ?? './data',
  names: ['localhost'],
  port: Number(process.env.PORT ?? 8443),
  host: process.env.HOST,
});
const app = Fastify({
  serverFactory: ck.createServer,
  routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
});
app.get('/', async () => ({ hello: 'from my app' }));
await app.register(certkeeperApi, { prefix: '/certkeeper', ...ck.apiOptions });
await app.ready();
const { url, initialAdmin } = await ck.listen();
console.log(`serving ${url} (the API at ${url}certkeeper/api/docs/)`);
if (initialAdmin.oneTimePassword) console.log(`admin password: ${initialAdmin.oneTimePassword}`);
process.once('SIGTERM', () => ck.close().then(() => app.close()));
