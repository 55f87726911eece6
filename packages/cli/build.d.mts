/** Types of build.mjs (plain JavaScript, so it runs before anything is built). */
export declare const DIST: string;
export declare const BUILD_INFO: string;
export declare function checkBuild(): { stale: string | null; dir: string | null };
export declare function build(): Promise<string>;
