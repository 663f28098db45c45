export declare const soakEcho: (id: number, bytes: number) => string;
