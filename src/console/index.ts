// "connect-actions/console": the web console of the ActionService, a static page (HTML, CSS and browser
// JavaScript modules in assets/) served by a Node.js handler. It only talks to the ActionService's REST
// paths, so it depends on nothing else of the library.
export {
  type ConsoleHandler,
  type ConsoleHandlerOptions,
  type ConsoleRequest,
  type ConsoleResponse,
  consoleSecurityHeaders,
  createConsoleHandler,
} from "./console-handler.js";
export { consoleAssetsDir } from "./console-assets.js";
